package bk

import (
	"errors"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
)

// RC is a v2 return code (BookieProtocol's int error codes). The values are
// part of the wire format.
type RC int32

// v2 return codes; the BookKeeper name is in each comment.
const (
	RCOK                 RC = 0   // EOK
	RCNoLedger           RC = 1   // ENOLEDGER
	RCNoEntry            RC = 2   // ENOENTRY
	RCBadRequest         RC = 100 // EBADREQ
	RCIO                 RC = 101 // EIO
	RCUnauthorized       RC = 102 // EUA: the master key did not match
	RCBadVersion         RC = 103 // EBADVERSION
	RCFenced             RC = 104 // EFENCED
	RCReadOnly           RC = 105 // EREADONLY
	RCTooManyRequests    RC = 106 // ETOOMANYREQUESTS
	RCUnknownLedgerState RC = 107 // EUNKNOWNLEDGERSTATE
)

// StatusCode is a v3 status (BookkeeperProtocol.proto enum StatusCode). The
// values are part of the wire format.
type StatusCode int32

// v3 status codes; the BookKeeper name is in each comment.
const (
	StatusOK                 StatusCode = 0   // EOK
	StatusNoLedger           StatusCode = 402 // ENOLEDGER
	StatusNoEntry            StatusCode = 403 // ENOENTRY
	StatusBadRequest         StatusCode = 404 // EBADREQ
	StatusIO                 StatusCode = 501 // EIO
	StatusUnauthorized       StatusCode = 502 // EUA
	StatusBadVersion         StatusCode = 503 // EBADVERSION
	StatusFenced             StatusCode = 504 // EFENCED
	StatusReadOnly           StatusCode = 505 // EREADONLY
	StatusTooManyRequests    StatusCode = 506 // ETOOMANYREQUESTS
	StatusUnknownLedgerState StatusCode = 507 // EUNKNOWNLEDGERSTATE
)

// Errors for return codes that have no base error class.
var (
	ErrBadRequest         = errors.New("bk: bad request")
	ErrIO                 = errors.New("bk: I/O error on the bookie")
	ErrBadVersion         = errors.New("bk: protocol version not supported")
	ErrUnknownLedgerState = errors.New("bk: ledger in unknown state")
)

type rcInfo struct {
	name   string
	status StatusCode
	class  error
}

func (rc RC) info() (rcInfo, bool) {
	switch rc {
	case RCOK:
		return rcInfo{"EOK", StatusOK, nil}, true
	case RCNoLedger:
		return rcInfo{"ENOLEDGER", StatusNoLedger, base.ErrNoLedger}, true
	case RCNoEntry:
		return rcInfo{"ENOENTRY", StatusNoEntry, base.ErrNoEntry}, true
	case RCBadRequest:
		return rcInfo{"EBADREQ", StatusBadRequest, ErrBadRequest}, true
	case RCIO:
		return rcInfo{"EIO", StatusIO, ErrIO}, true
	case RCUnauthorized:
		return rcInfo{"EUA", StatusUnauthorized, base.ErrUnauthorized}, true
	case RCBadVersion:
		return rcInfo{"EBADVERSION", StatusBadVersion, ErrBadVersion}, true
	case RCFenced:
		return rcInfo{"EFENCED", StatusFenced, base.ErrFenced}, true
	case RCReadOnly:
		return rcInfo{"EREADONLY", StatusReadOnly, base.ErrReadOnly}, true
	case RCTooManyRequests:
		return rcInfo{"ETOOMANYREQUESTS", StatusTooManyRequests, base.ErrBusy}, true
	case RCUnknownLedgerState:
		return rcInfo{"EUNKNOWNLEDGERSTATE", StatusUnknownLedgerState, ErrUnknownLedgerState}, true
	}
	return rcInfo{}, false
}

func (rc RC) String() string {
	if in, ok := rc.info(); ok {
		return in.name
	}
	return fmt.Sprintf("RC(%d)", int32(rc))
}

// Known reports whether rc is one of the codes BookKeeper defines.
func (rc RC) Known() bool { _, ok := rc.info(); return ok }

// Status is the v3 status code for rc; an unknown rc maps to StatusIO.
func (rc RC) Status() StatusCode {
	if in, ok := rc.info(); ok {
		return in.status
	}
	return StatusIO
}

// Err is nil for RCOK and otherwise an Error carrying rc.
func (rc RC) Err() error {
	if rc == RCOK {
		return nil
	}
	return &Error{RC: rc}
}

// RC is the v2 code for s; an unknown status maps to RCIO.
func (s StatusCode) RC() RC {
	switch s {
	case StatusOK:
		return RCOK
	case StatusNoLedger:
		return RCNoLedger
	case StatusNoEntry:
		return RCNoEntry
	case StatusBadRequest:
		return RCBadRequest
	case StatusIO:
		return RCIO
	case StatusUnauthorized:
		return RCUnauthorized
	case StatusBadVersion:
		return RCBadVersion
	case StatusFenced:
		return RCFenced
	case StatusReadOnly:
		return RCReadOnly
	case StatusTooManyRequests:
		return RCTooManyRequests
	case StatusUnknownLedgerState:
		return RCUnknownLedgerState
	}
	return RCIO
}

// Known reports whether s is one of the codes BookKeeper defines.
func (s StatusCode) Known() bool { return s == StatusIO || s.RC() != RCIO }

func (s StatusCode) String() string {
	if s.Known() {
		return s.RC().String()
	}
	return fmt.Sprintf("StatusCode(%d)", int32(s))
}

// Err is nil for StatusOK and otherwise an Error carrying the matching v2
// code.
func (s StatusCode) Err() error { return s.RC().Err() }

// Error is a failure a bookie reported with a return code. It unwraps to the
// matching error class (base.ErrFenced for RCFenced, ...), so callers test
// errors.Is(err, base.ErrFenced) whichever protocol carried it.
type Error struct {
	RC RC
}

func (e *Error) Error() string {
	if in, ok := e.RC.info(); ok {
		return fmt.Sprintf("bk: bookie returned %s (%d): %v", in.name, int32(e.RC), in.class)
	}
	return fmt.Sprintf("bk: bookie returned unknown code %d", int32(e.RC))
}

// Unwrap returns the error class of the code (nil for an unknown code).
func (e *Error) Unwrap() error {
	in, _ := e.RC.info()
	return in.class
}

// RCFromError is the v2 code a bookie sends for err: RCOK for nil, the code
// of an *Error, the code whose class err matches, and RCIO for anything
// else. base.ErrNoSpace reads as RCReadOnly (a bookie out of space is
// read-only), base.ErrNotImplemented and base.ErrTooLarge as RCBadRequest.
func RCFromError(err error) RC {
	if err == nil {
		return RCOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.RC
	}
	switch {
	case errors.Is(err, base.ErrFenced):
		return RCFenced
	case errors.Is(err, base.ErrNoLedger):
		return RCNoLedger
	case errors.Is(err, base.ErrNoEntry):
		return RCNoEntry
	case errors.Is(err, base.ErrUnauthorized):
		return RCUnauthorized
	case errors.Is(err, base.ErrReadOnly), errors.Is(err, base.ErrNoSpace):
		return RCReadOnly
	case errors.Is(err, base.ErrBusy):
		return RCTooManyRequests
	case errors.Is(err, ErrBadRequest), errors.Is(err, base.ErrNotImplemented), errors.Is(err, base.ErrTooLarge):
		return RCBadRequest
	case errors.Is(err, ErrBadVersion):
		return RCBadVersion
	case errors.Is(err, ErrUnknownLedgerState):
		return RCUnknownLedgerState
	}
	return RCIO
}

// StatusFromError is the v3 status a bookie sends for err (see RCFromError).
func StatusFromError(err error) StatusCode { return RCFromError(err).Status() }
