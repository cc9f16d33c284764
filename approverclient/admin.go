package approverclient

import (
	"context"
	"fmt"
	"net/http"
	"slices"
)

// The administrator's side of approver management (docs/api.md §9.10):
// what `hsmgate dev` does for its demo approver, with an
// approverKeyManagementToken as the Client's Credential.

// approverStatus is the answer of GET …/onboarding/status.
type approverStatus struct {
	Onboarded []approverEntry `json:"onboarded"`
	Pending   []approverEntry `json:"pending"`
}

// approverEntry is one approver of approverStatus.
type approverEntry struct {
	Name string `json:"approverName"`
}

// EnsurePending makes sure the approver name exists and, unless it is
// onboarded, that it has a code no one has seen: a pending approver's code
// is renewed (the old one stops working), an unknown name is created with
// backupPassword (the password of TSB's PKCS#12 path). It returns the new
// one-time code, or "" when the approver is onboarded already.
func (c *Client) EnsurePending(ctx context.Context, name, backupPassword string) (string, error) {
	var st approverStatus
	if err := c.call(ctx, http.MethodGet, "/v1/approverManagement/onboarding/status", nil, &st); err != nil {
		return "", fmt.Errorf("approver status: %w", err)
	}
	named := func(a approverEntry) bool { return a.Name == name }
	if slices.ContainsFunc(st.Onboarded, named) {
		return "", nil
	}
	var out struct {
		Code string `json:"oneTimeCode"`
	}
	if slices.ContainsFunc(st.Pending, named) {
		if err := c.call(ctx, http.MethodPost, "/v1/approverManagement/renewOneTimeCode", map[string]any{"approverName": name}, &out); err != nil {
			return "", fmt.Errorf("renew the code of approver %s: %w", name, err)
		}
	} else {
		body := map[string]any{"approverName": name, "backupPassword": backupPassword}
		if err := c.call(ctx, http.MethodPut, "/v1/approverManagement/create", body, &out); err != nil {
			return "", fmt.Errorf("create approver %s: %w", name, err)
		}
	}
	if out.Code == "" {
		return "", fmt.Errorf("approver %s: the answer holds no oneTimeCode", name)
	}
	return out.Code, nil
}
