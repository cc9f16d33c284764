package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// setLeaf sets the string or []string field at path (field indexes,
// through pointers to structs, which it allocates) of v to s.
func setLeaf(v reflect.Value, path []int, s string) {
	for _, i := range path {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{s, s + "-2"}))
	}
}

// leaves lists the paths to every string and []string field of t,
// through pointers to structs.
func leaves(t reflect.Type, prefix []int) [][]int {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out [][]int
	for i := range t.NumField() {
		f := t.Field(i)
		path := append(append([]int(nil), prefix...), i)
		switch {
		case f.Type == reflect.TypeFor[TimeMillis]():
		case f.Type.Kind() == reflect.String, f.Type == reflect.TypeFor[[]string]():
			out = append(out, path)
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			out = append(out, leaves(f.Type, path)...)
		default:
			panic("audit test: no case for the field " + f.Name + " of " + t.Name() + ": teach appendEvent and this test about it")
		}
	}
	return out
}

// TestAppendEventIsJSONMarshal: the hand-written encoding of an event is
// byte for byte json.Marshal's, for every field alone, all together, empty
// nested objects and strings that json.Marshal escapes.
func TestAppendEventIsJSONMarshal(t *testing.T) {
	at := TimeMillis(time.Date(2026, 12, 6, 23, 59, 58, 123456789, time.FixedZone("CET", 3600)))
	var events []Event
	paths := leaves(reflect.TypeFor[Event](), nil)
	all := Event{Time: at}
	for _, p := range paths {
		ev := Event{Time: at}
		setLeaf(reflect.ValueOf(&ev).Elem(), p, "v")
		setLeaf(reflect.ValueOf(&all).Elem(), p, fmt.Sprint("value-", p))
		events = append(events, ev)
	}
	events = append(events, all, Event{},
		Event{Time: at, Principal: &Principal{}, Credential: &Credential{}, Approval: &Approval{}},
		Event{Time: at, Principal: &Principal{Customers: []string{}}},
		Event{Time: at, Principal: &Principal{Customers: []string{""}, Source: "::1"}})
	for _, s := range []string{`"quoted"`, `back\slash`, "<a href='x'>&amp;</a>", "tab\tnewline\ncr\rbell\a\b\f\x00\x1f\x7f",
		"é ü 日本", "line\u2028sep\u2029", "bad \xff\xfe utf-8", "\xed\xa0\x80"} {
		events = append(events, Event{Time: at, Action: s, Key: s, Detail: s, Outcome: Outcome(s),
			Principal: &Principal{Subject: s, Customers: []string{s, "x"}}, Credential: &Credential{Kind: s}, Approval: &Approval{To: s}})
	}
	for _, ev := range events {
		want, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := body(&ev); !bytes.Equal(got, want) {
			t.Errorf("event %+v:\n got %s\nwant %s", ev, got, want)
		}
	}
	if len(paths) < 20 { // 9 of Event, 4 of Principal, 3 of Credential, 4 of Approval
		t.Fatalf("the walk found %d string fields, not every one", len(paths))
	}
}

// TestAppendTimeIsTheLayout: appendTime writes what AppendFormat writes
// with timeLayout, for times across and beyond four-digit years, in any
// zone.
func TestAppendTimeIsTheLayout(t *testing.T) {
	times := []time.Time{{}, time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 23, 59, 58, 123456789, time.FixedZone("CET", 3600))}
	for i := range 2000 {
		times = append(times, time.Unix(int64(i)*15_778_463_777%253_402_300_799, int64(i)*7_919_977%1_000_000_000))
	}
	for _, at := range times {
		want := at.UTC().AppendFormat(nil, timeLayout)
		if got := appendTime([]byte("x"), at); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("%v: got %s, want x%s", at, got, want)
		}
	}
}

// BenchmarkBody encodes the event of one signature, as Record does for
// every key operation in the request's goroutine.
func BenchmarkBody(b *testing.B) {
	ev := Event{Time: TimeMillis(time.Now()), Instance: "gateway-1", RequestID: "66a1a468-12345", Action: ActionKeySign, Outcome: Success,
		Principal: &Principal{Subject: "static:keyOperationToken#1", Scheme: "static", Customers: []string{"default"}, Source: "127.0.0.1"},
		Key:       "bench-key", Algorithm: "SHA256_WITH_ECDSA", PayloadSHA256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
	b.ReportAllocs()
	for b.Loop() {
		body(&ev)
	}
}
