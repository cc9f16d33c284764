// Package integration holds hsmgate's end-to-end tests. They build the real
// binary once, start it on a fresh SoftHSM2 token with real TLS (`hsmgate
// dev` and `hsmgate serve --config`), and drive the TSB-compatible API of
// docs/api.md over HTTPS with the role tokens the binary generated.
//
// Independent implementations check the results: crypto/* and openssl verify
// signatures and decrypt ciphertexts made by the gateway, and ciphertexts made
// by them are decrypted through the gateway.
//
// Run with `go test ./integration`; `-short` skips the package.
package integration
