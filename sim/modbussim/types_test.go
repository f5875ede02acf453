package modbussim

import (
	"fmt"
	"strings"
	"testing"
)

// TestNewTypesImage: half floats and packed BCD are laid out as written by
// hand here (IEEE 754 half bits, one decimal digit per nibble), in the
// byte order asked.
func TestNewTypesImage(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
[[units]]
id = 1
size = 20
[[units.registers]]
area = "holding"
address = 0
type = "float16"
value = -1.5
[[units.registers]]
area = "holding"
address = 1
type = "float16"
byte_order = "BADC"
value = 0.1
[[units.registers]]
area = "holding"
address = 2
type = "bcd16"
value = 1234
[[units.registers]]
area = "holding"
address = 3
type = "bcd32"
byte_order = "CDAB"
value = 12345678
[[units.registers]]
area = "input"
address = 0
type = "bcd16"
generator = "counter"
value = 9999
period = "1h"
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Read(1, Holding, 0, 5)
	if want := "[be00 662e 1234 5678 1234]"; fmt.Sprintf("%x", got) != want {
		t.Errorf("image %x, want %s", got, want)
	}
	if got, _ := s.Read(1, Input, 0, 1); got[0] != 0x9999 {
		t.Errorf("bcd16 counter at 9999: %#04x", got[0])
	}
	for _, bad := range []string{`type = "bcd16"` + "\nvalue = 10000", `type = "float16"` + "\nvalue = 70000.0", `type = "bcd32"` + "\nvalue = -1"} {
		_, err := ParseConfig([]byte("[[units]]\nid = 1\n[[units.registers]]\narea = \"holding\"\naddress = 0\n" + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%q: %v, want out of range", bad, err)
		}
	}
}
