package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/hsmgate/hsmgate/store"
)

// exportPage is how many entries Export reads per query.
const exportPage = 1000

// Export writes the whole log to w as JSON lines (docs/audit.md §4):
// every entry in seq order, then every checkpoint. It returns the number
// of entries written.
func Export(ctx context.Context, st store.AuditLog, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	n := 0
	for after := int64(0); ; {
		page, err := st.AuditEntries(ctx, store.AuditFilter{AfterSeq: after, Limit: exportPage})
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		for _, r := range page {
			bw.Write(r.Line)
			bw.WriteByte('\n')
		}
		n += len(page)
		if len(page) < exportPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	cps, err := st.AuditCheckpoints(ctx, 0, 0)
	if err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	for _, c := range cps {
		bw.Write(c.Line)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export: write: %w", err)
	}
	return n, nil
}
