// Package auth recognises the one credential of a request (static role
// token, client certificate, JWT, Argus API key, session or signature,
// Barong or Armor HMAC key, Actyx app token), turns it into a
// roles.Principal or a failure of a known kind, and keeps the replay store
// and the failure throttle; it knows no route paths and builds no wire
// bodies.
package auth
