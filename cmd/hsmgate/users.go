package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/internal/server"
	"github.com/hsmgate/hsmgate/store"
)

// Administration of users and customers, offline on the configured store
// and token (the server may be running: both can be shared). Output is
// JSON. Passwords come from HSMGATE_USER_PASSWORD or the first line of
// standard input, never from the command line.
//
//	hsmgate user add     --config FILE [--domain D] [--roles R,…] [--customers C,…] [--admin] [--totp] USERNAME
//	hsmgate user passwd  --config FILE USER
//	hsmgate user totp    --config FILE USER       prints a new TOTP secret and otpauth:// URI, once
//	hsmgate user roles   --config FILE --roles R,… [--customers C,…] USER
//	hsmgate user disable --config FILE USER       (and enable)
//	hsmgate user list    --config FILE
//	hsmgate customer add --config FILE NAME
//	hsmgate customer list --config FILE
//
// USER is a user id, DOMAIN/USERNAME, or USERNAME in the default domain.

// userUsage is the synopsis of `hsmgate user`.
const userUsage = "usage: hsmgate user add|passwd|totp|roles|disable|enable|list --config FILE [flags] [USER] (see cmd/hsmgate/users.go)"

// adminEnv is what an administration command works on.
type adminEnv struct {
	ctx   context.Context
	st    store.Store
	users *auth.Users
	close func()
}

// openAdmin loads the configuration and opens the store and the token.
func openAdmin(path string) (*adminEnv, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	log := server.NewLogger(config.LogConfig{Format: "text", Level: "warn"}, os.Stderr)
	ctx := context.Background()
	h, err := server.OpenHSM(cfg.HSM, log)
	if err != nil {
		return nil, err
	}
	st, err := server.OpenStore(ctx, cfg.Store, log)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &adminEnv{ctx: ctx, st: st, users: auth.NewUsers(st, h), close: func() { _ = st.Close(); h.Close() }}, nil
}

// printJSON writes v to standard output.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// userView is the printed form of a user.
type userView struct {
	ID        string   `json:"id"`
	Domain    string   `json:"domain"`
	Username  string   `json:"username"`
	Roles     []string `json:"roles"`
	Customers []string `json:"customers"`
	Admin     bool     `json:"admin"`
	Disabled  bool     `json:"disabled"`
	TOTP      bool     `json:"totp"`
	// TOTPSecret and TOTPURI are printed once, when TOTP is switched on.
	TOTPSecret string `json:"totpSecret,omitempty"`
	TOTPURI    string `json:"totpURI,omitempty"`
}

// viewOf renders a stored user.
func viewOf(u *store.User) userView {
	return userView{ID: u.ID, Domain: u.Domain, Username: u.Username, Roles: nonEmpty(u.Roles), Customers: nonEmpty(u.Customers),
		Admin: u.Admin, Disabled: u.Disabled, TOTP: u.TOTPSecret != nil}
}

// nonEmpty prints a nil list as [].
func nonEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// readPassword returns HSMGATE_USER_PASSWORD or the first line of stdin.
func readPassword(stdin io.Reader) (string, error) {
	if p := os.Getenv("HSMGATE_USER_PASSWORD"); p != "" {
		return p, nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", errors.New("no password: set HSMGATE_USER_PASSWORD or write it to standard input")
	}
	return line, nil
}

// findUser resolves a user id, DOMAIN/USERNAME or USERNAME.
func (e *adminEnv) findUser(ref string) (*store.User, error) {
	if _, err := uuid.Parse(ref); err == nil {
		return e.st.User(e.ctx, ref)
	}
	domain, name, ok := strings.Cut(ref, "/")
	if !ok {
		domain, name = auth.DefaultDomain, ref
	}
	return e.st.UserByName(e.ctx, domain, name)
}

// ensureDefaultCustomer creates the built-in customer "default" (the
// customer of every key created without one) when customers name it.
func (e *adminEnv) ensureDefaultCustomer(customers []string) error {
	for _, c := range customers {
		if c == "default" {
			err := e.st.AddCustomer(e.ctx, store.Customer{Name: c, CreatedAt: time.Now().UTC()})
			if err != nil && !errors.Is(err, store.ErrExists) {
				return fmt.Errorf("create customer default: %w", err)
			}
		}
	}
	return nil
}

// userCommand runs `hsmgate user …`.
func userCommand(args []string) error {
	if len(args) == 0 {
		return errors.New(userUsage)
	}
	verb := args[0]
	switch verb {
	case "add", "passwd", "totp", "roles", "disable", "enable", "list":
	default:
		return fmt.Errorf("unknown verb %q: %s", verb, userUsage)
	}
	fs := flag.NewFlagSet("user "+verb, flag.ContinueOnError)
	path := fs.String("config", "hsmgate.yaml", "configuration file")
	domain := fs.String("domain", auth.DefaultDomain, "domain of a new user")
	roleList := fs.String("roles", "", "comma-separated role names")
	customerList := fs.String("customers", "default", "comma-separated customers")
	admin := fs.Bool("admin", false, "the user administers every user's credentials")
	totp := fs.Bool("totp", false, "switch TOTP on for the new user and print its secret")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	want := 1
	if verb == "list" {
		want = 0
	}
	if fs.NArg() != want {
		return errors.New(userUsage)
	}
	e, err := openAdmin(*path)
	if err != nil {
		return err
	}
	defer e.close()
	switch verb {
	case "add":
		return e.addUser(*domain, fs.Arg(0), splitList(*roleList), splitList(*customerList), *admin, *totp)
	case "list":
		list, err := e.st.Users(e.ctx)
		if err != nil {
			return err
		}
		out := make([]userView, len(list))
		for i := range list {
			out[i] = viewOf(&list[i])
		}
		return printJSON(out)
	}
	u, err := e.findUser(fs.Arg(0))
	if err != nil {
		return err
	}
	switch verb {
	case "passwd":
		pw, err := readPassword(os.Stdin)
		if err != nil {
			return err
		}
		err = e.users.SetPassword(e.ctx, u.ID, pw)
		if err != nil {
			return err
		}
	case "totp":
		secret, uri, err := e.users.EnableTOTP(e.ctx, u.ID)
		if err != nil {
			return err
		}
		return printJSON(map[string]string{"id": u.ID, "totpSecret": secret, "totpURI": uri})
	case "roles":
		customers := splitList(*customerList)
		if err := e.ensureDefaultCustomer(customers); err != nil {
			return err
		}
		if err := e.users.SetRoles(e.ctx, u.ID, splitList(*roleList), customers); err != nil {
			return err
		}
	case "disable", "enable":
		if err := e.users.SetDisabled(e.ctx, u.ID, verb == "disable"); err != nil {
			return err
		}
	}
	if u, err = e.st.User(e.ctx, u.ID); err != nil {
		return err
	}
	return printJSON(viewOf(u))
}

// addUser creates a user with the password from the environment or stdin.
func (e *adminEnv) addUser(domain, name string, roleNames, customers []string, admin, totp bool) error {
	pw, err := readPassword(os.Stdin)
	if err != nil {
		return err
	}
	if err := e.ensureDefaultCustomer(customers); err != nil {
		return err
	}
	u, err := e.users.Add(e.ctx, domain, name, pw, roleNames, customers, admin)
	if err != nil {
		return err
	}
	v := viewOf(u)
	if totp {
		if v.TOTPSecret, v.TOTPURI, err = e.users.EnableTOTP(e.ctx, u.ID); err != nil {
			return err
		}
		v.TOTP = true
	}
	return printJSON(v)
}

// customerCommand runs `hsmgate customer add|list --config FILE [NAME]`.
func customerCommand(args []string) error {
	const usage = "usage: hsmgate customer add|list --config FILE [NAME]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("customer "+args[0], flag.ContinueOnError)
	path := fs.String("config", "hsmgate.yaml", "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	e, err := openAdmin(*path)
	if err != nil {
		return err
	}
	defer e.close()
	switch {
	case args[0] == "add" && fs.NArg() == 1 && strings.TrimSpace(fs.Arg(0)) != "":
		c := store.Customer{Name: fs.Arg(0), CreatedAt: time.Now().UTC()}
		if err := e.st.AddCustomer(e.ctx, c); err != nil {
			return fmt.Errorf("customer %s: %w", c.Name, err)
		}
		return printJSON(map[string]string{"name": c.Name})
	case args[0] == "list" && fs.NArg() == 0:
		list, err := e.st.Customers(e.ctx)
		if err != nil {
			return err
		}
		names := make([]string, len(list))
		for i, c := range list {
			names[i] = c.Name
		}
		return printJSON(names)
	}
	return errors.New(usage)
}
