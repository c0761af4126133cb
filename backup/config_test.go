package backup

import (
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/validate"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Compression != CompressS2 || c.DifferentialChecksums == nil || *c.DifferentialChecksums || c.Retention.Fulls != 4 {
		t.Fatalf("defaults: %+v", c)
	}
	v := validate.New("backup")
	c.Validate(v)
	if err := v.Err(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c.Compression = "lz4"
	c.Files = []string{"/etc/haconf/haconf.yaml", "cib.xml"}
	c.Differential = "@daily"
	c.Full = ""
	v = validate.New("backup")
	c.Validate(v)
	msg := v.Err().Error()
	for _, want := range []string{"compression", "files[1]", "needs a full schedule"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems %q lack %q", msg, want)
		}
	}
	o := c.Options(nil, nil)
	if o.Compression != "lz4" || o.Repo.Dir != c.Repository || o.Checksums || len(o.ConfigFiles) != 2 {
		t.Fatalf("options: %+v", o)
	}
}
