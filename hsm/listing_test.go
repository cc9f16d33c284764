package hsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// TestListingAtScale fills a token with many keys directly through PKCS#11
// (through the API it would take minutes), reopens it, and lists them: the
// listing comes from the index built in one walk at connection, with each
// key's record, and never loads keys one by one.
func TestListingAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a token with thousands of objects")
	}
	// HSMGATE_LISTING_KEYS scales the test up for the figures in
	// docs/benchmarks.md (creating 10,000 keys takes minutes on SoftHSM2).
	n := 300
	if v, err := strconv.Atoi(os.Getenv("HSMGATE_LISTING_KEYS")); err == nil && v > 0 {
		n = v
	}
	h := newTestHSM(t)
	ctx := context.Background()
	err := h.do(ctx, false, func(s *session) error {
		for i := range n {
			label := fmt.Sprintf("bulk-%05d", i)
			created := []pkcs11.ObjectHandle{}
			o, err := s.createObject("bulk key", append(keyObjectAttrs(pkcs11.CKO_SECRET_KEY, true, label, []byte(label), Flags{Encrypt: true}),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), pkcs11.NewAttribute(pkcs11.CKA_VALUE, make([]byte, 16))))
			if err != nil {
				return err
			}
			created = append(created, o)
			if _, err := s.createMeta(label, Meta{UUID: label, Algorithm: AlgAES, KeySize: 128, Origin: OriginImported,
				App: json.RawMessage(fmt.Sprintf(`{"customer":"c%d"}`, i%2))}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh connection: nothing cached, the index is built anew.
	scan := time.Now()
	reopen(t, h)
	t.Logf("reconnecting and indexing %d keys: %v", n, time.Since(scan))
	start := time.Now()
	list, err := h.Listing(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("listed %d keys, want %d", len(list), n)
	}
	for i, k := range list {
		want := fmt.Sprintf("bulk-%05d", i)
		if k.Label != want || !strings.Contains(string(k.App), fmt.Sprintf(`"customer":"c%d"`, i%2)) {
			t.Fatalf("entry %d = %s %s, want %s with its record", i, k.Label, k.App, want)
		}
	}
	if took > 2*time.Second { // loose: it reads no token at all (figures in make bench)
		t.Errorf("listing %d keys took %v", n, took)
	}
	t.Logf("listing %d keys from the index: %v", n, took)

	// A lookup of a label the index lacks searches the token once.
	start = time.Now()
	if _, err := h.Key(ctx, "not-there"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	t.Logf("a miss among %d keys (one token search): %v", n, time.Since(start))
}

// TestListingRescansInTheBackground: a key another program created behind
// this process's back joins the listing after a background rescan, which a
// listing starts once the index is older than labelRescanInterval.
func TestListingRescansInTheBackground(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	old := labelRescanInterval
	t.Cleanup(func() { labelRescanInterval = old })
	labelRescanInterval = 0
	_, err := h.run(ctx, keyLane, func(s *session) error {
		_, err := h.ctx.GenerateKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "behind"),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := h.Listing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Label == "behind" && list[0].App == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key created behind the index's back is not listed after 10 s: %v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
