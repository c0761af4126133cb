package rabbitmq

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// What a node logs about its peers' tables (RabbitMQ 3.10). Every boot
// logs "Waiting for Mnesia tables for 30000 ms, 9 retries left" and at
// once "Successfully synced tables from a peer". A node that stopped
// while its peer still ran waits for that peer instead; each retry ends
// with {timeout_waiting_for_tables,['rabbit@ctl2','rabbit@ctl1'],[tables]}
// (spread over several log lines), and once the retries are used up the
// server prints "BOOT FAILED" and "Timeout contacting cluster nodes:
// ['rabbit@ctl2']." and exits.
var (
	logPrefixRE = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \S+ \[\w+\] <[\d.]+> ?`)
	bootRE      = regexp.MustCompile(`Starting RabbitMQ \d|##  ##      RabbitMQ \d`)
	timeoutRE   = regexp.MustCompile(`(?:timeout_waiting_for_tables,|Timeout contacting cluster nodes:)\s*\[([^\]]*)\]`)
)

// WaitingHint is the advice for node whose log (text) shows its last boot
// waiting for a peer's tables; "" when it does not.
func WaitingHint(text []byte, node string) string {
	text = logPrefixRE.ReplaceAll(text, nil)
	if loc := bootRE.FindAllIndex(text, -1); len(loc) > 0 {
		text = text[loc[len(loc)-1][0]:]
	}
	timeouts := timeoutRE.FindAllSubmatch(text, -1)
	waits := bytes.LastIndex(text, []byte("Waiting for Mnesia tables"))
	synced := bytes.LastIndex(text, []byte("Successfully synced tables"))
	if len(timeouts) == 0 && (waits < 0 || waits < synced) {
		return ""
	}
	peer := "the peer"
	if len(timeouts) > 0 {
		for _, n := range strings.Split(string(timeouts[len(timeouts)-1][1]), ",") {
			if n = strings.Trim(n, " \t\n'"); n != "" && n != node {
				peer = n
				break
			}
		}
	}
	return fmt.Sprintf("waiting for %s, which was running when this node stopped: start it first, or force_boot if it is lost", peer)
}

// BannerLogs are the log files a start banner names:
//
//	Logs: /var/log/rabbitmq/rabbit@ctl1.log
//	      /var/log/rabbitmq/rabbit@ctl1_upgrade.log
//	      <stdout>
func BannerLogs(out []byte) []string {
	var files []string
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "Logs:"); ok {
			files, in = files[:0], true
			line = strings.TrimSpace(rest)
		}
		if !in {
			continue
		}
		if !filepath.IsAbs(line) {
			in = false
			continue
		}
		files = append(files, line)
	}
	return files
}
