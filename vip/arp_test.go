package vip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

func TestGratuitousARPFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	f := GratuitousARP(mac, netip.MustParseAddr("10.251.0.10"))
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x06, // Ethernet, ARP
		0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
		0x02, 0, 0, 0, 0, 0x0a, 10, 251, 0, 10, // sender = the VIP at our MAC
		0, 0, 0, 0, 0, 0, 10, 251, 0, 10, // target = the VIP
	}
	if !bytes.Equal(f, want) {
		t.Fatalf("frame\n got %x\nwant %x", f, want)
	}
}
