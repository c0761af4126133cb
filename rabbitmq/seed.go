package rabbitmq

import (
	"strconv"
	"strings"
)

// Seed is the first node of the classic_config peer list in a
// rabbitmq.conf (cluster_formation.classic_config.nodes.N, lowest N), or
// "" when there is none.
func Seed(conf []byte) string {
	seed, low := "", -1
	for _, line := range strings.Split(string(conf), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		n, found := strings.CutPrefix(strings.TrimSpace(key), "cluster_formation.classic_config.nodes.")
		i, err := strconv.Atoi(n)
		if !found || err != nil {
			continue
		}
		if low < 0 || i < low {
			seed, low = strings.TrimSpace(value), i
		}
	}
	return seed
}
