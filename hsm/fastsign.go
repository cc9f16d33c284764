package hsm

// The signing fast path. Every request that signs, and every credential
// check, ends in C_SignInit and C_Sign. Through github.com/miekg/pkcs11
// that is three calls into the module — its Sign asks for the length with
// a NULL buffer first, then signs — and three cgo transitions, each with C
// allocations for the mechanism and the result. On a software token every
// call into the module also pays the module's own entry checks (SoftHSM2
// calls getpid(2) on each, a system call that costs about 1 µs on the
// virtual machines this was measured on). signOnce makes C_SignInit and
// one C_Sign into a caller's buffer in a single cgo call.
//
// The module's C_SignInit and C_Sign are looked up in the library that
// miekg/pkcs11 already loaded (dlopen with RTLD_NOLOAD: the same instance,
// hence the same sessions and objects). A module that does not export
// them, or a mechanism fastSignable does not list, takes the miekg path.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef unsigned long hg_ulong;

// PKCS#11 CK_MECHANISM (default packing on Unix).
typedef struct {
	hg_ulong mechanism;
	void *pParameter;
	hg_ulong ulParameterLen;
} hg_mechanism;

typedef hg_ulong (*hg_sign_init_fn)(hg_ulong session, hg_mechanism *mech, hg_ulong key);
typedef hg_ulong (*hg_sign_fn)(hg_ulong session, unsigned char *data, hg_ulong data_len,
	unsigned char *sig, hg_ulong *sig_len);

// hg_open returns the already loaded module at path, or NULL.
static void *hg_open(const char *path) {
	return dlopen(path, RTLD_NOW | RTLD_NOLOAD);
}

// hg_result is a return value and the signature length (returned by
// value, so that the Go side passes no pointer to a length it would have
// to allocate on the heap).
typedef struct {
	hg_ulong rv;
	hg_ulong len;
} hg_result;

// hg_sign runs C_SignInit (when init is set) and one C_Sign into sig of
// sig_cap bytes. CKR_BUFFER_TOO_SMALL leaves the operation active with
// len set to the length needed; C_Sign may then be called again with init
// NULL.
static hg_result hg_sign(void *init, void *sign, hg_ulong session, hg_ulong mech, hg_ulong key,
		unsigned char *data, hg_ulong data_len, unsigned char *sig, hg_ulong sig_cap) {
	hg_result r = {0, sig_cap};
	if (init != NULL) {
		hg_mechanism m = {mech, NULL, 0};
		r.rv = ((hg_sign_init_fn)init)(session, &m, key);
		if (r.rv != 0) {
			return r;
		}
	}
	r.rv = ((hg_sign_fn)sign)(session, data, data_len, sig, &r.len);
	return r;
}
*/
import "C"

import (
	"unsafe"

	"github.com/miekg/pkcs11"
)

// signBufferLen fits the signatures of every key the gateway makes up to
// RSA-4096; longer ones take a second C_Sign with the length asked for.
// maxSignatureLen bounds what a module may ask for.
const (
	signBufferLen   = 512
	maxSignatureLen = 64 << 10
)

// emptyInput is what the data pointer names for zero bytes: modules
// refuse a NULL pointer even then.
var emptyInput [1]byte

// fastSignable reports whether m takes the fast path: the mechanisms
// without parameters that the gateway signs with; any other (RSA-PSS,
// whose parameters the fast path does not pass) goes through miekg/pkcs11.
func fastSignable(m *pkcs11.Mechanism) bool {
	switch m.Mechanism {
	case pkcs11.CKM_ECDSA, ckmEDDSA, pkcs11.CKM_RSA_PKCS, pkcs11.CKM_SHA_1_HMAC, pkcs11.CKM_SHA224_HMAC,
		pkcs11.CKM_SHA256_HMAC, pkcs11.CKM_SHA384_HMAC, pkcs11.CKM_SHA512_HMAC:
		return m.Parameter == nil
	}
	return false
}

// fastSigner holds the module's C_SignInit and C_Sign.
type fastSigner struct {
	lib, signInit, sign unsafe.Pointer
}

// openFastSigner finds C_SignInit and C_Sign in the module at path, which
// must be loaded already; nil when the module does not export them.
func openFastSigner(path string) *fastSigner {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	lib := C.hg_open(cpath)
	if lib == nil {
		return nil
	}
	f := &fastSigner{lib: lib, signInit: symbol(lib, "C_SignInit"), sign: symbol(lib, "C_Sign")}
	if f.signInit == nil || f.sign == nil {
		f.close()
		return nil
	}
	return f
}

// symbol looks name up in lib.
func symbol(lib unsafe.Pointer, name string) unsafe.Pointer {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return C.dlsym(lib, cname)
}

// close drops the reference openFastSigner took on the module.
func (f *fastSigner) close() {
	C.dlclose(f.lib)
}

// signOnce signs data with key on session under mech, which takes no
// parameters: C_SignInit and C_Sign in one cgo call.
func (f *fastSigner) signOnce(session pkcs11.SessionHandle, mech uint, key pkcs11.ObjectHandle, data []byte) ([]byte, error) {
	return f.signInto(session, mech, key, data, make([]byte, signBufferLen))
}

// signInto is signOnce with the first C_Sign into buf.
func (f *fastSigner) signInto(session pkcs11.SessionHandle, mech uint, key pkcs11.ObjectHandle, data, buf []byte) ([]byte, error) {
	dataPtr := (*C.uchar)(unsafe.Pointer(&emptyInput[0]))
	if len(data) > 0 {
		dataPtr = (*C.uchar)(unsafe.Pointer(&data[0]))
	}
	init := f.signInit
	for {
		var bufPtr *C.uchar
		if len(buf) > 0 {
			bufPtr = (*C.uchar)(unsafe.Pointer(&buf[0]))
		}
		r := C.hg_sign(init, f.sign, C.hg_ulong(session), C.hg_ulong(mech), C.hg_ulong(key),
			dataPtr, C.hg_ulong(len(data)), bufPtr, C.hg_ulong(len(buf)))
		rv, n := uint(r.rv), int(r.len)
		switch {
		case rv == pkcs11.CKR_OK && n <= len(buf):
			return buf[:n:n], nil
		case rv == pkcs11.CKR_OK:
			return nil, pkcs11.Error(pkcs11.CKR_GENERAL_ERROR) // a length beyond the buffer it filled
		case rv == pkcs11.CKR_BUFFER_TOO_SMALL && len(buf) < maxSignatureLen:
			// The operation is still active: sign again into a buffer of
			// the length the module asked for (a module asking for no
			// more than it had gets twice as much), up to maxSignatureLen,
			// so that the operation ends one way or another and the
			// session goes back to the pool without one active.
			init, buf = nil, make([]byte, min(max(n, 2*len(buf), 1), maxSignatureLen))
		default:
			return nil, pkcs11.Error(rv)
		}
	}
}
