package store

import "context"

// Setting reads a setting of s's database, on the connection that
// AppendAudit commits on when onAudit is set, on another one otherwise:
// the tests of AppendAudit's durability use it.
func Setting(ctx context.Context, s Store, query string, onAudit bool) (string, error) {
	ss, ok := s.(*sqlStore)
	if lite, split := s.(*sqliteStore); split {
		ss, ok = lite.log, true
		if !onAudit {
			ss = lite.Store.(*cachedStore).sqlStore
		}
	}
	if !ok {
		panic("store.Setting: not a store of this package")
	}
	var v string
	if !onAudit {
		err := ss.db.QueryRowContext(ctx, query).Scan(&v)
		return v, err
	}
	set, err := ss.audit.get(ctx, ss)
	if err != nil {
		return "", err
	}
	err = set.conn.QueryRowContext(ctx, query).Scan(&v)
	return v, err
}
