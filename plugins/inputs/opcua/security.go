package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/edgepipe/edgepipe/internal/atomicfile"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// loadKeyPair reads a PEM certificate and its RSA private key (PKCS#1 or
// PKCS#8). OPC UA's security policies are RSA-only.
func loadKeyPair(certFile, keyFile string) (certDER []byte, key *rsa.PrivateKey, err error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", certFile, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		// Never quote the file's content: it is a secret.
		return nil, nil, fmt.Errorf("%s holds no PEM private key", keyFile)
	}
	var pk any
	if pk, err = x509.ParsePKCS1PrivateKey(kblk.Bytes); err != nil {
		if pk, err = x509.ParsePKCS8PrivateKey(kblk.Bytes); err != nil {
			return nil, nil, fmt.Errorf("%s: not an RSA private key in PKCS#1 or PKCS#8 form", keyFile)
		}
	}
	rk, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: OPC UA needs an RSA key", keyFile)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&rk.PublicKey) {
		return nil, nil, fmt.Errorf("%s and %s do not belong together", certFile, keyFile)
	}
	return blk.Bytes, rk, nil
}

// ensureClientCert returns the client certificate: the configured one, or
// one generated once under dataDir/opcua/ and kept there, so that a server
// that trusted it once keeps trusting it after a restart. The certificate's
// URI is the application URI the session announces, as OPC UA requires.
func ensureClientCert(dataDir, deviceID, name string) (certFile, keyFile string, err error) {
	dir := filepath.Join(dataDir, "opcua")
	certFile = filepath.Join(dir, name+"-cert.pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	if _, _, err := loadKeyPair(certFile, keyFile); err == nil {
		return certFile, keyFile, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("the generated client certificate under %s: %v", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	host, _ := os.Hostname()
	appURI := applicationURI(deviceID)
	u, _ := url.Parse(appURI)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "edgepipe " + deviceID, Organization: []string{"edgepipe"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{host},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := atomicfile.Write(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func applicationURI(deviceID string) string {
	if deviceID == "" {
		deviceID = "gateway"
	}
	return "urn:edgepipe:" + url.PathEscape(deviceID)
}

// pinOf is the SHA-256 of a certificate's public key, as server_pin_sha256
// names it (hex).
func pinOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// errUntrusted is a server certificate that neither a pin nor the CA
// vouches for.
var errUntrusted = errors.New("server certificate not trusted")

// verifyServer checks the server's certificate (DER, as its endpoint
// description carries it) against the pins and the CA. With neither
// configured there is nothing to check (security None). OPC UA servers
// mostly have self-signed certificates and are reached by address, so
// the CA check verifies the chain, not the host name.
func (s *settings) verifyServer(der []byte) error {
	if len(s.pins) == 0 && s.roots == nil {
		return nil
	}
	if len(der) == 0 {
		return fmt.Errorf("%w: the server sent no certificate", errUntrusted)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: %v", errUntrusted, err)
	}
	pin := pinOf(cert)
	for _, p := range s.pins {
		if hex.EncodeToString(p) == pin {
			return nil
		}
	}
	if s.roots != nil {
		_, err := cert.Verify(x509.VerifyOptions{Roots: s.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err == nil {
			return nil
		}
		return fmt.Errorf("%w: %v (its server_pin_sha256 is %s)", errUntrusted, err, pin)
	}
	return fmt.Errorf("%w: its public key matches no server_pin_sha256 (the server's is %s)", errUntrusted, pin)
}
