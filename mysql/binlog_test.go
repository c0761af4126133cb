package mysql

import "testing"

func TestParseMasterStatus(t *testing.T) {
	m, err := ParseMasterStatus([]byte("mysql-bin.000004\t1234\t\t\n"))
	if err != nil || m.File != "mysql-bin.000004" || m.Position != 1234 {
		t.Fatalf("%+v %v", m, err)
	}
	if m, err := ParseMasterStatus([]byte("\n")); err != nil || m != (MasterStatus{}) {
		t.Fatalf("binary log disabled: %+v %v", m, err)
	}
	if _, err := ParseMasterStatus([]byte("garbage")); err == nil {
		t.Fatal("garbage accepted")
	}
}
