package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// FailMode says what happens to an action whose event cannot be recorded.
type FailMode string

// Fail modes (docs/audit.md §5).
const (
	// FailClosed refuses the action (503): nothing runs unrecorded.
	FailClosed FailMode = "fail-closed"
	// BestEffort runs the action and counts and logs the lost event.
	BestEffort FailMode = "best-effort"
)

// CheckpointSigner signs checkpoint statements with the audit key, which
// lives in the token (hsm.HSM.SignCheckpoint).
type CheckpointSigner interface {
	SignCheckpoint(ctx context.Context, statement []byte) ([]byte, error)
}

// Defaults of Options.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
	defaultMaxBatch           = 512
	// retryInterval is how often a failing log tries to record again.
	retryInterval = time.Second
	// pruneInterval is how often the retention is applied.
	pruneInterval = time.Hour
	// queueLinger is how long a batch of queued events only waits for
	// more before it is committed.
	queueLinger = 25 * time.Millisecond
	// storeTimeout bounds one write to the store.
	storeTimeout = 10 * time.Second
)

// Options configure a Log.
type Options struct {
	Store  store.AuditLog
	Signer CheckpointSigner
	// PublicKey is the audit key's DER SubjectPublicKeyInfo: checkpoints
	// name it by its SHA-256.
	PublicKey []byte
	// Instance names this gateway instance in its events.
	Instance string
	// FailMode is FailClosed (the default) or BestEffort.
	FailMode FailMode
	// CheckpointEvery and CheckpointInterval: a checkpoint is signed after
	// this many entries written by this instance, or this long after the
	// first entry not yet covered, whichever comes first.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// WaitForOperations makes fail-closed Record wait for the commit of
	// key operations too (sign, verify, HMAC, encrypt, decrypt). Without
	// it their events are queued and the operation answers at once: a
	// failed commit then counts them lost, and from then on every action
	// is refused (docs/audit.md §5).
	WaitForOperations bool
	// Retention, when set, prunes entries older than this behind a
	// signed checkpoint, hourly.
	Retention time.Duration
	// Log receives the log's own warnings (default slog.Default()).
	Log *slog.Logger
}

// Stats are the log's counters since it was opened.
type Stats struct {
	// Recorded events, stored.
	Recorded uint64
	// Refused actions (fail-closed) whose event could not be recorded.
	Refused uint64
	// Dropped events that could not be recorded after their action had
	// answered: best-effort, or queued key operations.
	Dropped uint64
	// Checkpoints signed.
	Checkpoints uint64
	// Commits are the store transactions that appended entries: Recorded
	// / Commits is the mean group size.
	Commits uint64
}

// Log records events in the store's chain with group commit: a single
// writer takes every event queued while the previous transaction ran and
// appends them in one transaction, so that concurrent requests share the
// cost of a commit.
type Log struct {
	opts  Options
	keyID string
	in    chan pending
	// urgent wakes a lingering writer for a Record that waits.
	urgent chan struct{}
	quit   chan struct{}
	done   chan struct{}
	// failing is set while the store refuses writes; cause is the last
	// refusal, which Ready's error wraps (a store outage stays one).
	failing atomic.Bool
	cause   atomic.Pointer[error]

	// Counters of Stats.
	refused, dropped, recorded, checkpoints, commits atomic.Uint64
	// refusedSinceOutage and lostSinceOutage count what the next outage
	// event reports.
	refusedSinceOutage, lostSinceOutage atomic.Uint64
	// The writer's own state.
	uncovered      int       // entries written by this instance since its last checkpoint
	uncoveredSince time.Time // when the first of them was written
	lastSeq        int64
	lastHash       []byte
	failedAt       time.Time
	closeOnce      sync.Once
}

// pending is one event on its way to the store, sent by value: the hot
// path allocates nothing for it.
type pending struct {
	rec store.AuditRecord // Line holds the body until the writer chains it
	// done receives the outcome of the commit when Record waits for it
	// (fail-closed); nil otherwise.
	done chan error
}

// keyOperation says whether action is one of the hot key operations
// whose events fail-closed Record queues unless Options.WaitForOperations.
func keyOperation(action string) bool {
	switch action {
	case ActionKeySign, ActionKeyVerify, ActionKeyHMAC, ActionKeyVerifyHMAC,
		ActionKeyEncrypt, ActionKeyDecrypt, ActionKeyEncryptFile, ActionKeyDecryptFile:
		return true
	}
	return false
}

// Open starts a Log on opts.Store and records that this instance opened it.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Store == nil || opts.Signer == nil || len(opts.PublicKey) == 0 {
		return nil, errors.New("audit: a store, a signer and the audit public key are required")
	}
	switch opts.FailMode {
	case "":
		opts.FailMode = FailClosed
	case FailClosed, BestEffort:
	default:
		return nil, fmt.Errorf("audit: fail mode %q (fail-closed or best-effort)", opts.FailMode)
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	sum := sha256.Sum256(opts.PublicKey)
	l := &Log{opts: opts, keyID: hex.EncodeToString(sum[:]), in: make(chan pending, 4*defaultMaxBatch),
		urgent: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	if err := l.Record(ctx, Event{Action: ActionAuditStart, Outcome: Success, Detail: string(opts.FailMode)}); err != nil {
		l.Close(ctx)
		return nil, fmt.Errorf("audit: record the start: %w", err)
	}
	return l, nil
}

// KeyID is the hex SHA-256 of the audit key's SubjectPublicKeyInfo.
func (l *Log) KeyID() string { return l.keyID }

// PublicKey is the audit key's DER SubjectPublicKeyInfo.
func (l *Log) PublicKey() []byte { return l.opts.PublicKey }

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{Recorded: l.recorded.Load(), Refused: l.refused.Load(), Dropped: l.dropped.Load(), Checkpoints: l.checkpoints.Load(),
		Commits: l.commits.Load()}
}

// Ready implements Recorder.
func (l *Log) Ready() error {
	if l.opts.FailMode == FailClosed && l.failing.Load() {
		l.refused.Add(1)
		l.refusedSinceOutage.Add(1)
		if cause := l.cause.Load(); cause != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, *cause)
		}
		return ErrUnavailable
	}
	return nil
}

// Record implements Recorder. Fail-closed, it waits for the commit; best
// effort, it queues the event and returns.
func (l *Log) Record(ctx context.Context, ev Event) error {
	if ev.Time == (TimeMillis{}) {
		ev.Time = TimeMillis(time.Now())
	}
	ev.Instance = l.opts.Instance
	p := pending{rec: store.AuditRecord{Time: time.Time(ev.Time), Line: body(&ev)}}
	wait := l.opts.FailMode == FailClosed && (l.opts.WaitForOperations || !keyOperation(ev.Action))
	if wait {
		p.done = make(chan error, 1)
	}
	if err := l.enqueue(ctx, p); err != nil {
		return fmt.Errorf("record %s: %w", ev.Action, err)
	}
	if !wait {
		return nil
	}
	select {
	case l.urgent <- struct{}{}: // cut the writer's linger short
	default: // it is signalled already
	}
	var err error
	select {
	case err = <-p.done:
	case <-l.done:
		return fmt.Errorf("record %s: %w: the log is closed", ev.Action, ErrUnavailable)
	}
	if err != nil {
		return fmt.Errorf("record %s: %w: %w", ev.Action, ErrUnavailable, err)
	}
	return nil
}

// enqueue queues p for the writer, waiting while the queue is full.
func (l *Log) enqueue(ctx context.Context, p pending) error {
	select {
	case <-l.quit:
		return ErrUnavailable
	default:
	}
	select {
	case l.in <- p: // the hot path: room in the queue
		return nil
	default:
	}
	select {
	case l.in <- p:
		return nil
	case <-l.quit:
		return ErrUnavailable
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the writer after it stored what was queued, and signs a
// last checkpoint over what this instance wrote.
func (l *Log) Close(ctx context.Context) {
	l.closeOnce.Do(func() {
		close(l.quit)
		<-l.done
		if l.uncovered > 0 {
			if err := l.checkpoint(ctx, checkpointClose); err != nil {
				l.opts.Log.Warn("audit: no checkpoint at close", "error", err.Error())
			}
		}
	})
}

// run is the writer: it appends what is queued in batches, signs the
// checkpoints that are due, retries while the store fails, and prunes.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(retryInterval)
	defer tick.Stop()
	lastPrune := time.Time{}
	batch := make([]pending, 0, defaultMaxBatch)
	for {
		select {
		case p := <-l.in:
			l.write(l.gather(append(batch[:0], p)))
		case <-tick.C:
			if l.failing.Load() {
				l.write(nil) // records the outage, or stays failing
			}
			if l.uncovered > 0 && time.Since(l.uncoveredSince) >= l.opts.CheckpointInterval {
				l.checkpointNow(checkpointPeriodic)
			}
			if l.opts.Retention > 0 && time.Since(lastPrune) >= pruneInterval {
				lastPrune = time.Now()
				if _, err := l.Prune(context.Background(), time.Now().Add(-l.opts.Retention)); err != nil {
					l.opts.Log.Warn("audit: prune failed", "error", err.Error())
				}
			}
		case <-l.quit:
			for {
				rest, _ := l.drain(batch[:0])
				if len(rest) == 0 {
					return
				}
				l.write(rest)
			}
		}
	}
}

// gather adds to batch what is queued. While no Record waits for the
// batch, it lingers up to queueLinger for more: queued key operations
// have answered already, and fewer, larger commits cost the store less
// CPU per event, which the operations on the same cores need. It
// lingers asleep, not receiving: a writer woken by every event queued
// cost a goroutine wake-up (often a thread's) per key operation; a
// Record that waits wakes it through urgent.
func (l *Log) gather(batch []pending) []pending {
	select {
	case <-l.urgent: // a signal for a batch already written
	default:
	}
	batch, waiting := l.drain(batch)
	if waiting || len(batch) >= defaultMaxBatch {
		return batch
	}
	linger := time.NewTimer(queueLinger)
	select {
	case <-linger.C:
	case <-l.urgent:
	case <-l.quit:
	}
	linger.Stop()
	batch, _ = l.drain(batch)
	return batch
}

// drain adds to batch what is queued, up to defaultMaxBatch, and says
// whether a Record waits for one of them.
func (l *Log) drain(batch []pending) ([]pending, bool) {
	waiting := false
	for _, p := range batch {
		waiting = waiting || p.done != nil
	}
	for len(batch) < defaultMaxBatch {
		select {
		case p := <-l.in:
			batch = append(batch, p)
			waiting = waiting || p.done != nil
		default:
			return batch, waiting
		}
	}
	return batch, waiting
}

// write appends batch, preceded by an outage event when events were lost
// since the last success, and answers every waiting Record.
func (l *Log) write(batch []pending) {
	recs := make([]store.AuditRecord, 0, len(batch)+1)
	// The commit is durable when an action waits for it or it records an
	// outage; queued key operations answered already, and their entries
	// become durable with the next durable write (docs/audit.md §5).
	durable := false
	if l.failing.Load() || l.lostSinceOutage.Load()+l.refusedSinceOutage.Load() > 0 {
		if out := l.outageRecord(); out != nil {
			recs = append(recs, *out)
			durable = true
		}
	}
	for _, p := range batch {
		recs = append(recs, p.rec)
		durable = durable || p.done != nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	var lastSeq int64
	var lastHash []byte
	err := l.opts.Store.AppendAudit(ctx, durable, func(seq int64, prev []byte) ([]store.AuditRecord, error) {
		if prev == nil {
			prev = genesis
		}
		out := make([]store.AuditRecord, len(recs))
		for i, r := range recs {
			seq++
			r.Seq, r.Line = seq, entryLine(seq, prev, r.Line)
			r.Hash = entryHash(r.Line)
			prev, out[i] = r.Hash, r
		}
		lastSeq, lastHash = seq, prev
		return out, nil
	})
	cancel()
	if err != nil {
		l.fail(err, batch)
	} else if len(recs) > 0 {
		l.lastSeq, l.lastHash = lastSeq, lastHash
		if l.failing.Swap(false) {
			l.opts.Log.Info("audit: the log records again")
		}
		l.lostSinceOutage.Store(0)
		l.refusedSinceOutage.Store(0)
		l.recorded.Add(uint64(len(recs)))
		l.commits.Add(1)
		if l.uncovered == 0 {
			l.uncoveredSince = time.Now()
		}
		l.uncovered += len(recs)
	}
	for _, p := range batch {
		if p.done != nil {
			p.done <- err
		}
	}
	if err == nil && l.uncovered >= l.opts.CheckpointEvery {
		l.checkpointNow(checkpointPeriodic)
	}
}

// fail notes a failed append of batch: the events whose Record waits
// refuse their action; the others are lost.
func (l *Log) fail(err error, batch []pending) {
	l.cause.Store(&err)
	if !l.failing.Swap(true) {
		l.failedAt = time.Now()
		l.opts.Log.Error("audit: the store refuses the log's writes", "failMode", string(l.opts.FailMode), "error", err.Error())
	}
	for _, p := range batch {
		if p.done != nil {
			l.refused.Add(1)
			l.refusedSinceOutage.Add(1)
		} else {
			l.dropped.Add(1)
			l.lostSinceOutage.Add(1)
		}
	}
}

// outageRecord is the event that records an outage that is ending, or
// nil when none was noticed.
func (l *Log) outageRecord() *store.AuditRecord {
	refused, lost := l.refusedSinceOutage.Load(), l.lostSinceOutage.Load()
	if refused+lost == 0 && !l.failing.Load() {
		return nil
	}
	ev := Event{Time: TimeMillis(time.Now()), Instance: l.opts.Instance, Action: ActionAuditOutage, Outcome: Failure,
		Detail: fmt.Sprintf("%d actions refused, %d events lost since %s", refused, lost, l.failedAt.UTC().Format(timeLayout))}
	return &store.AuditRecord{Time: time.Time(ev.Time), Line: body(&ev)}
}

// checkpointNow signs a checkpoint from the writer, logging a failure (the
// next one covers these entries too).
func (l *Log) checkpointNow(kind string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := l.checkpoint(ctx, kind); err != nil {
		l.opts.Log.Warn("audit: checkpoint failed", "error", err.Error())
	}
}

// checkpoint signs and stores a checkpoint over the last entry this
// instance wrote: a point of the one chain, whatever other instances
// appended since.
func (l *Log) checkpoint(ctx context.Context, kind string) error {
	start, startPrev, err := l.start(ctx)
	if err != nil {
		return err
	}
	c := Checkpoint{Seq: l.lastSeq, Head: hex.EncodeToString(l.lastHash), Start: start, StartPrev: startPrev, Kind: kind}
	if err := l.sign(ctx, c); err != nil {
		return err
	}
	l.uncovered = 0
	return nil
}

// start returns the first entry's seq and prev.
func (l *Log) start(ctx context.Context) (int64, string, error) {
	first, err := l.opts.Store.AuditEntries(ctx, store.AuditFilter{Limit: 1})
	if err != nil {
		return 0, "", fmt.Errorf("audit: read the first entry: %w", err)
	}
	if len(first) == 0 {
		return 0, "", errors.New("audit: the log is empty")
	}
	var lk link
	if err := json.Unmarshal(first[0].Line, &lk); err != nil {
		return 0, "", fmt.Errorf("audit: entry %d: %w", first[0].Seq, err)
	}
	return lk.Seq, lk.Prev, nil
}

// sign signs c, dated now, and stores it.
func (l *Log) sign(ctx context.Context, c Checkpoint) error {
	now := time.Now().UTC()
	c.Time = now.Format(timeLayout)
	sig, err := l.opts.Signer.SignCheckpoint(ctx, c.Statement())
	if err != nil {
		return fmt.Errorf("audit: sign the checkpoint at %d: %w", c.Seq, err)
	}
	line, err := json.Marshal(SignedCheckpoint{Checkpoint: c, KeyID: l.keyID, Signature: sig})
	if err != nil {
		return fmt.Errorf("audit: encode the checkpoint at %d: %w", c.Seq, err)
	}
	if err := l.opts.Store.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: c.Seq, Time: now, Line: line}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.checkpoints.Add(1)
	return nil
}

// Prune deletes the entries older than before, behind a signed checkpoint
// of kind prune that names the new first entry and its prev, so that the
// rest stays verifiable (docs/audit.md §6). The head is always kept. It
// returns how many entries it deleted.
func (l *Log) Prune(ctx context.Context, before time.Time) (int, error) {
	headSeq, headHash, err := l.opts.Store.AuditHead(ctx)
	if err != nil || headSeq == 0 {
		return 0, err
	}
	kept, err := l.opts.Store.AuditEntries(ctx, store.AuditFilter{Since: before, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	first := headSeq
	if len(kept) > 0 && kept[0].Seq < first {
		first = kept[0].Seq
	}
	start, _, err := l.start(ctx)
	if err != nil || first <= start {
		return 0, err
	}
	entry, err := l.opts.Store.AuditEntries(ctx, store.AuditFilter{AfterSeq: first - 1, Limit: 1})
	if err != nil || len(entry) == 0 {
		return 0, fmt.Errorf("audit: prune: read entry %d: %v", first, err)
	}
	var lk link
	if err := json.Unmarshal(entry[0].Line, &lk); err != nil {
		return 0, fmt.Errorf("audit: prune: entry %d: %w", first, err)
	}
	c := Checkpoint{Seq: headSeq, Head: hex.EncodeToString(headHash), Start: lk.Seq, StartPrev: lk.Prev, Kind: checkpointPrune}
	if err := l.sign(ctx, c); err != nil {
		return 0, err
	}
	n, err := l.opts.Store.PruneAudit(ctx, lk.Seq)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return n, nil
}
