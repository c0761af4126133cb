package lab

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// FenceArgs parses the fence-agents command line (-o ACTION, -n PLUG,
// --key=value, --key value) and hands each option to set, which reports
// whether it knows the key. It returns the keys it saw.
func FenceArgs(args []string, set func(k, v string) bool) ([]string, error) {
	var keys []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var k, v string
		switch {
		case strings.HasPrefix(a, "--"):
			var ok bool
			if k, v, ok = strings.Cut(a[2:], "="); !ok {
				if i+1 >= len(args) {
					return keys, fmt.Errorf("option %s needs a value", a)
				}
				i++
				v = args[i]
			}
		case strings.HasPrefix(a, "-") && len(a) >= 2:
			if k, v = a[1:2], a[2:]; v == "" {
				if i+1 >= len(args) {
					return keys, fmt.Errorf("option %s needs a value", a)
				}
				i++
				v = args[i]
			}
		default:
			return keys, fmt.Errorf("unexpected argument %q", a)
		}
		if !set(k, v) {
			return keys, fmt.Errorf("unknown option %s", a)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// FenceStdin reads the key=value lines Pacemaker's fencer writes to an
// agent's stdin and hands each to set; unknown keys are set's to ignore
// (Pacemaker passes more than an agent declares: nodename, pcmk_*). A line
// without "=" is an error when strict, skipped otherwise.
func FenceStdin(stdin io.Reader, strict bool, set func(k, v string) bool) error {
	sc := bufio.NewScanner(stdin)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			if strict {
				return fmt.Errorf("line %d %q: want key=value", n, line)
			}
			continue
		}
		set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return sc.Err()
}
