package opcua

import "crypto/x509"

// PinOf is the server_pin_sha256 of a DER certificate, for the tests.
func PinOf(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return pinOf(c)
}

// ParseNode exposes parseNode to the fuzz target.
func ParseNode(s string) error {
	_, err := parseNode(s)
	return err
}
