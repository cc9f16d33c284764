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

// userRef says how the USER argument is written.
const userRef = "USER is a user id, DOMAIN/USERNAME, or USERNAME in the default domain."

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

// printJSON writes v to standard output. Characters such as & stay as
// they are (not \u0026), so that an otpauth:// URI printed reads as the
// URI it is.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printList prints the view of every item of a listing, or returns the
// error of the listing.
func printList[T, V any](list []T, err error, view func(*T) V) error {
	if err != nil {
		return err
	}
	out := make([]V, len(list))
	for i := range list {
		out[i] = view(&list[i])
	}
	return printJSON(out)
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

// userCommand is `hsmgate user …`.
func userCommand() *command {
	return &command{name: "user", summary: "manage users offline: add, passwd, totp, roles, disable, enable, list",
		about: "Manage the users of the store offline (the server may be running). Output is JSON; passwords\n" +
			"come from HSMGATE_USER_PASSWORD or the first line of standard input, never the command line.",
		subs: []*command{
			{name: "add", args: "USERNAME", nargs: 1, summary: "create a user with a password (and TOTP)",
				about: "Create a user with the password from HSMGATE_USER_PASSWORD or standard input. With --totp, also\n" +
					"print its TOTP secret (base32) and otpauth:// URI, once: give either to an authenticator app,\n" +
					"oathtool --totp -b or scripts/totp.sh.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					path := configFlag(fs)
					domain := fs.String("domain", auth.DefaultDomain, "`DOMAIN` of the new user")
					roleList := rolesFlag(fs)
					customerList := customersFlag(fs)
					admin := fs.Bool("admin", false, "the user administers every user's credentials")
					totp := fs.Bool("totp", false, "switch TOTP on and print its secret and otpauth:// URI")
					return func(args []string) error {
						return withAdmin(*path, func(e *adminEnv) error {
							return e.addUser(*domain, args[0], splitList(*roleList), splitList(*customerList), *admin, *totp)
						})
					}
				}},
			{name: "passwd", args: "USER", nargs: 1, summary: "set a user's password",
				about: "Set a user's password, read from HSMGATE_USER_PASSWORD or standard input. " + userRef,
				setup: userSetup(func(e *adminEnv, u *store.User) error {
					pw, err := readPassword(os.Stdin)
					if err != nil {
						return err
					}
					return e.users.SetPassword(e.ctx, u.ID, pw)
				})},
			{name: "totp", args: "USER", nargs: 1, summary: "give a user a new TOTP secret, printed once",
				about: "Give a user a new TOTP secret and print it (base32) with its otpauth:// URI, once; the previous\n" +
					"secret stops working. " + userRef,
				setup: adminSetup(func(e *adminEnv, args []string) error {
					u, err := e.findUser(args[0])
					if err != nil {
						return err
					}
					secret, uri, err := e.users.EnableTOTP(e.ctx, u.ID)
					if err != nil {
						return err
					}
					return printJSON(map[string]string{"id": u.ID, "totpSecret": secret, "totpURI": uri})
				})},
			{name: "roles", args: "USER", nargs: 1, summary: "set a user's roles and customers",
				about: "Set a user's roles and customers; its credentials narrow them at once. " + userRef,
				setup: func(fs *flag.FlagSet) func([]string) error {
					path := configFlag(fs)
					roleList := rolesFlag(fs)
					customerList := customersFlag(fs)
					return func(args []string) error {
						return withAdmin(*path, func(e *adminEnv) error {
							return e.onUser(args[0], func(e *adminEnv, u *store.User) error {
								customers := splitList(*customerList)
								if err := e.ensureDefaultCustomer(customers); err != nil {
									return err
								}
								return e.users.SetRoles(e.ctx, u.ID, splitList(*roleList), customers)
							})
						})
					}
				}},
			userSwitch("disable", "disable a user: every credential of it stops working at once", true),
			userSwitch("enable", "enable a disabled user again", false),
			{name: "list", summary: "list the users",
				setup: adminSetup(func(e *adminEnv, _ []string) error {
					list, err := e.st.Users(e.ctx)
					return printList(list, err, viewOf)
				})},
		}}
}

// userSwitch is `hsmgate user disable` or `enable`.
func userSwitch(name, summary string, disabled bool) *command {
	return &command{name: name, args: "USER", nargs: 1, summary: summary, about: summary + ". " + userRef,
		setup: userSetup(func(e *adminEnv, u *store.User) error {
			return e.users.SetDisabled(e.ctx, u.ID, disabled)
		})}
}

// rolesFlag defines --roles on fs.
func rolesFlag(fs *flag.FlagSet) *string {
	return fs.String("roles", "", "comma-separated `ROLES` (keyManagementToken, keyOperationToken, approverToken,\nserviceToken, approverKeyManagementToken)")
}

// customersFlag defines --customers on fs.
func customersFlag(fs *flag.FlagSet) *string {
	return fs.String("customers", "default", "comma-separated `CUSTOMERS` (tenants)")
}

// withAdmin opens the store and token of the configuration at path, runs
// f on them and closes them.
func withAdmin(path string, f func(e *adminEnv) error) error {
	e, err := openAdmin(path)
	if err != nil {
		return err
	}
	defer e.close()
	return f(e)
}

// adminSetup is the setup of an administration command whose only flag
// is --config: run gets the open store and token, and the arguments.
func adminSetup(run func(e *adminEnv, args []string) error) func(*flag.FlagSet) func([]string) error {
	return func(fs *flag.FlagSet) func([]string) error {
		path := configFlag(fs)
		return func(args []string) error {
			return withAdmin(*path, func(e *adminEnv) error { return run(e, args) })
		}
	}
}

// userSetup is the setup of a `hsmgate user` command whose only flag is
// --config and whose argument is USER: it applies change to the user.
func userSetup(change func(e *adminEnv, u *store.User) error) func(*flag.FlagSet) func([]string) error {
	return adminSetup(func(e *adminEnv, args []string) error { return e.onUser(args[0], change) })
}

// onUser applies change to the user ref names and prints the user as it
// is then.
func (e *adminEnv) onUser(ref string, change func(e *adminEnv, u *store.User) error) error {
	u, err := e.findUser(ref)
	if err != nil {
		return err
	}
	if err := change(e, u); err != nil {
		return err
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

// customerCommand is `hsmgate customer add|list`.
func customerCommand() *command {
	return &command{name: "customer", summary: "manage customers (tenants) offline: add, list",
		subs: []*command{
			{name: "add", args: "NAME", nargs: 1, summary: "create a customer",
				setup: adminSetup(func(e *adminEnv, args []string) error {
					if strings.TrimSpace(args[0]) == "" {
						return usageErrorf("the customer NAME is empty")
					}
					c := store.Customer{Name: args[0], CreatedAt: time.Now().UTC()}
					if err := e.st.AddCustomer(e.ctx, c); err != nil {
						return fmt.Errorf("customer %s: %w", c.Name, err)
					}
					return printJSON(map[string]string{"name": c.Name})
				})},
			{name: "list", summary: "list the customers",
				setup: adminSetup(func(e *adminEnv, _ []string) error {
					list, err := e.st.Customers(e.ctx)
					return printList(list, err, func(c *store.Customer) string { return c.Name })
				})},
		}}
}
