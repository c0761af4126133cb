package gossip

import (
	"crypto/sha256"
	"io"

	"golang.org/x/crypto/hkdf"
)

// keyInfo binds derived keys to this use: the same secret gives other keys elsewhere.
const keyInfo = "haconf compute gossip v1"

// DeriveKey returns the 32-byte gossip key for secret (HKDF-SHA256, no salt,
// info "haconf compute gossip v1"). The controller derives it from the
// corosync authkey or a configured key file, and hands it to the agents. The
// key is only as secret as secret: an empty one gives a key anyone can
// compute.
func DeriveKey(secret []byte) []byte {
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(keyInfo)), key); err != nil {
		panic("gossip: HKDF-SHA256 cannot fail for 32 bytes: " + err.Error())
	}
	return key
}
