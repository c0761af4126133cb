package pacemaker

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Fixtures in testdata/corosync were captured from corosync 3.1.7 (Debian
// 12): two-links-connected and peer-down in the haconf UML lab, the others
// from two corosync instances in private network namespaces with one veth
// pair per knet link, taking one or both links down.
func readCorosync(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "corosync", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCfgtool(t *testing.T) {
	type want struct {
		link0, link1 string // status of node 2
		connected    [2]bool
	}
	tests := []struct {
		file string
		want want
	}{
		{"corosync-cfgtool-317-s-two-links-connected.txt", want{LinkConnected, LinkConnected, [2]bool{true, true}}},
		{"corosync-cfgtool-317-s-link1-down.txt", want{LinkConnected, LinkDisconnected, [2]bool{true, false}}},
		{"corosync-cfgtool-317-s-link0-down.txt", want{LinkDisconnected, LinkConnected, [2]bool{false, true}}},
		{"corosync-cfgtool-317-s-both-links-down.txt", want{LinkDisconnected, LinkDisconnected, [2]bool{false, false}}},
		{"corosync-cfgtool-317-s-peer-down.txt", want{LinkDisconnected, LinkDisconnected, [2]bool{false, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st, err := ParseCfgtool(readCorosync(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if st.LocalNodeID != 1 || st.Transport != "knet" || len(st.Links) != 2 {
				t.Fatalf("status %+v", st)
			}
			for i, l := range st.Links {
				if l.ID != i || l.Transport != "udp" || l.Addr == "" || len(l.Nodes) != 2 {
					t.Errorf("link %d: %+v", i, l)
				}
				if l.PeerStatus(1) != LinkLocalhost {
					t.Errorf("link %d: node 1 is %q, want localhost", i, l.PeerStatus(1))
				}
				if l.Connected() != tt.want.connected[i] {
					t.Errorf("link %d: Connected() = %v", i, l.Connected())
				}
			}
			if got := [2]string{st.Links[0].PeerStatus(2), st.Links[1].PeerStatus(2)}; got != [2]string{tt.want.link0, tt.want.link1} {
				t.Errorf("node 2 = %v", got)
			}
		})
	}
}

func TestParseCfgtoolVariants(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    CfgStatus
		wantErr error
	}{
		{
			name: "corosync 3.0",
			in: "Printing link status.\nLocal node ID 1\nLINK ID 0\n\taddr\t= 192.0.2.11\n\tstatus:\n" +
				"\t\tnodeid  1:\tlink enabled:1\tlink connected:1\n\t\tnodeid  2:\tlink enabled:1\tlink connected:0\n",
			want: CfgStatus{LocalNodeID: 1, Links: []Link{{ID: 0, Addr: "192.0.2.11", Nodes: []LinkNode{
				{NodeID: 1, Status: LinkConnected}, {NodeID: 2, Status: LinkDisconnected}}}}},
		},
		{
			name:    "not running",
			in:      string(readCorosync(t, "corosync-cfgtool-317-s-not-running.txt")),
			wantErr: ErrCorosyncNotRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCfgtool([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := ParseCfgtool(nil); err == nil {
		t.Error("empty input parsed")
	}
}

func TestParseQuorumtool(t *testing.T) {
	tests := []struct {
		file           string
		quorate, block bool
		nodes, votes   int
		flags          []string
		members        []Member
	}{
		{"corosync-quorumtool-317-s-two-node-quorate.txt", true, false, 2, 2, []string{"2Node", "Quorate", "WaitForAll"},
			[]Member{{NodeID: 1, Votes: 1, Name: "ctl1", Local: true}, {NodeID: 2, Votes: 1, Name: "ctl2"}}},
		{"corosync-quorumtool-317-s-link1-down.txt", true, false, 2, 2, []string{"2Node", "Quorate", "WaitForAll"},
			[]Member{{NodeID: 1, Votes: 1, Name: "ctl1", Local: true}, {NodeID: 2, Votes: 1, Name: "ctl2"}}},
		{"corosync-quorumtool-317-s-peer-down.txt", true, false, 1, 1, []string{"2Node", "Quorate", "WaitForAll"},
			[]Member{{NodeID: 1, Votes: 1, Name: "ctl1", Local: true}}},
		{"corosync-quorumtool-317-s-partitioned-quorate.txt", true, false, 1, 1, []string{"2Node", "Quorate", "WaitForAll"},
			[]Member{{NodeID: 1, Votes: 1, Name: "ctl1", Local: true}}},
		{"corosync-quorumtool-317-s-alone-wait-for-all.txt", false, true, 1, 1, []string{"2Node", "WaitForAll"},
			[]Member{{NodeID: 1, Votes: 1, Name: "ctl1", Local: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			q, err := ParseQuorumtool(readCorosync(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if q.Provider != "corosync_votequorum" || q.NodeID != 1 || q.ExpectedVotes != 2 || q.Quorum != 1 || q.RingID == "" {
				t.Errorf("quorum %+v", q)
			}
			if q.Quorate != tt.quorate || q.ActivityBlocked != tt.block || q.Nodes != tt.nodes || q.TotalVotes != tt.votes {
				t.Errorf("quorate=%v blocked=%v nodes=%d votes=%d", q.Quorate, q.ActivityBlocked, q.Nodes, q.TotalVotes)
			}
			if !reflect.DeepEqual(q.Flags, tt.flags) {
				t.Errorf("flags %v", q.Flags)
			}
			if !reflect.DeepEqual(q.Members, tt.members) {
				t.Errorf("members %+v", q.Members)
			}
		})
	}
}

func TestParseQuorumtoolQdevice(t *testing.T) {
	in := "Quorum information\n------------------\nQuorum provider:  corosync_votequorum\nNodes:            2\nNode ID:          1\n" +
		"Quorate:          Yes\n\nVotequorum information\n----------------------\nExpected votes:   3\nHighest expected: 3\n" +
		"Total votes:      3\nQuorum:           2  \nFlags:            Quorate Qdevice \n\nMembership information\n" +
		"----------------------\n    Nodeid      Votes    Qdevice Name\n         1          1    A,V,NMW ctl1 (local)\n" +
		"         2          1    A,V,NMW ctl2\n         0          1            Qdevice\n"
	q, err := ParseQuorumtool([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{{NodeID: 1, Votes: 1, Qdevice: "A,V,NMW", Name: "ctl1", Local: true}, {NodeID: 2, Votes: 1, Qdevice: "A,V,NMW", Name: "ctl2"}}
	if !reflect.DeepEqual(q.Members, want) || !q.HasFlag("Qdevice") || q.TotalVotes != 3 {
		t.Errorf("got %+v", q)
	}
	if _, ok := q.Member("ctl2"); !ok {
		t.Error("Member(ctl2) not found")
	}
}

func TestParseQuorumtoolErrors(t *testing.T) {
	for _, in := range []string{"", "Cannot initialize CMAP service\n", "Quorum provider: x\nNodes: two\n"} {
		if _, err := ParseQuorumtool([]byte(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
	if _, err := ParseQuorumtool([]byte("Cannot initialize CMAP service\n")); !errors.Is(err, ErrCorosyncNotRunning) {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseCfgtool(f *testing.F) {
	for _, n := range []string{"corosync-cfgtool-317-s-two-links-connected.txt", "corosync-cfgtool-317-s-link1-down.txt", "corosync-cfgtool-317-s-not-running.txt"} {
		f.Add(readCorosync(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseCfgtool(data)
		if err != nil {
			return
		}
		for _, l := range st.Links {
			for _, n := range l.Nodes {
				if strings.ContainsAny(n.Status, "\t\n\r") || strings.Contains(n.Status, "  ") {
					t.Fatalf("status not normalized: %q", n.Status)
				}
			}
		}
	})
}

func FuzzParseQuorumtool(f *testing.F) {
	for _, n := range []string{"corosync-quorumtool-317-s-two-node-quorate.txt", "corosync-quorumtool-317-s-alone-wait-for-all.txt"} {
		f.Add(readCorosync(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseQuorumtool(data)
		if err != nil {
			return
		}
		for _, m := range q.Members {
			if m.Name == "" {
				t.Fatalf("member without name: %+v", m)
			}
		}
	})
}
