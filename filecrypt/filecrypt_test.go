package filecrypt

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"io"
	"reflect"
	"testing"
)

// seal seals content under key, header included.
func seal(t *testing.T, key, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	h, err := Header{CurveOID: asn1.ObjectIdentifier{1, 3, 132, 0, 34}, Ephemeral: []byte{4, 1, 2}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(h)
	n, err := Seal(&buf, bytes.NewReader(content), key)
	if err != nil || n != int64(len(content)) {
		t.Fatalf("Seal = %d, %v", n, err)
	}
	return buf.Bytes()
}

// open opens a whole file.
func open(file, key []byte) ([]byte, error) {
	r := bytes.NewReader(file)
	if _, _, err := ReadHeader(r); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	n, err := Open(&out, r, key)
	if err == nil && n != int64(out.Len()) {
		return nil, errors.New("Open miscounted")
	}
	return out.Bytes(), err
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	key := randomBytes(t, KeySize)
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3 * ChunkSize, 3*ChunkSize + 7} {
		content := randomBytes(t, n)
		file := seal(t, key, content)
		chunks := max(1, (n+ChunkSize-1)/ChunkSize)
		if body := len(file) - 21; body != n+chunks*TagSize { // header: 10 fixed bytes, 7 of OID, 1+3 of point
			t.Fatalf("%d bytes sealed into %d, want %d chunks", n, body, chunks)
		}
		got, err := open(file, key)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%d bytes: open: %v (%d bytes back)", n, err, len(got))
		}
	}
}

// TestOpenDetects: every change to the sealed chunks is ErrAuthentication.
func TestOpenDetects(t *testing.T) {
	key := randomBytes(t, KeySize)
	content := randomBytes(t, 3*ChunkSize+100)
	file := seal(t, key, content)
	hdr := len(file) - (len(content) + 4*TagSize)
	sealed := ChunkSize + TagSize
	chunk := func(i int) []byte { return file[hdr+i*sealed : min(len(file), hdr+(i+1)*sealed)] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flipped := bytes.Clone(file)
	flipped[hdr+sealed+5] ^= 0x80
	emptyLast := seal(t, key, content[:ChunkSize])
	cases := map[string][]byte{
		"bit flipped":                 flipped,
		"cut at a chunk boundary":     file[:hdr+3*sealed],
		"cut inside a chunk":          file[:len(file)-1],
		"no chunk at all":             file[:hdr],
		"chunks swapped":              cat(file[:hdr], chunk(1), chunk(0), chunk(2), chunk(3)),
		"chunk dropped":               cat(file[:hdr], chunk(0), chunk(2), chunk(3)),
		"data after the last chunk":   cat(file, []byte{0}),
		"last chunk repeated":         cat(file, chunk(3)),
		"wrong key":                   nil,
		"empty last chunk after data": cat(emptyLast, emptyLast[len(emptyLast)-TagSize:]),
	}
	for name, f := range cases {
		k := key
		if f == nil {
			f, k = file, randomBytes(t, KeySize)
		}
		if _, err := open(f, k); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: %v, want ErrAuthentication", name, err)
		}
	}
}

func TestHeader(t *testing.T) {
	h := Header{CurveOID: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, Ephemeral: randomBytes(t, 65)}
	raw, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("HGFE\x01\x00\x01\x00\x00\x0a\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x41"), h.Ephemeral...)
	if !bytes.Equal(raw, want) {
		t.Fatalf("header\n %x\nwant\n %x", raw, want)
	}
	r := io.MultiReader(bytes.NewReader(raw), bytes.NewReader([]byte("rest")))
	got, gotRaw, err := ReadHeader(r)
	if err != nil || !reflect.DeepEqual(got, h) || !bytes.Equal(gotRaw, raw) {
		t.Fatalf("ReadHeader = %+v, %x, %v", got, gotRaw, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("ReadHeader read past the header: %q left", rest)
	}
	bad := map[string][]byte{
		"empty":           nil,
		"magic":           append([]byte("HGFX"), raw[4:]...),
		"version":         append([]byte("HGFE\x02"), raw[5:]...),
		"chunk size":      append([]byte("HGFE\x01\x00\x02\x00\x00"), raw[9:]...),
		"cut in OID":      raw[:12],
		"cut in point":    raw[:len(raw)-1],
		"OID not DER":     append([]byte("HGFE\x01\x00\x01\x00\x00\x02\x04\x00"), raw[20:]...),
		"empty point":     append(bytes.Clone(raw[:20]), 0),
		"trailing in OID": append(append(append([]byte("HGFE\x01\x00\x01\x00\x00\x0b"), raw[10:20]...), 0), raw[20:]...),
	}
	for name, b := range bad {
		if _, _, err := ReadHeader(bytes.NewReader(b)); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: %v, want ErrHeader", name, err)
		}
	}
}

func TestKDFInfo(t *testing.T) {
	got := KDFInfo([]byte{1, 2}, []byte{4, 9})
	if want := []byte("hsmgate file encryption v1\x00\x01\x02\x04\x09"); !bytes.Equal(got, want) {
		t.Fatalf("KDFInfo = %q", got)
	}
}
