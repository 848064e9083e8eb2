package bk

import (
	"errors"
	"fmt"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

func TestReturnCodes(t *testing.T) {
	// The table of BookieProtocol / BookkeeperProtocol.proto codes.
	cases := []struct {
		rc     RC
		v2     int32
		status StatusCode
		v3     int32
		name   string
		class  error
	}{
		{RCOK, 0, StatusOK, 0, "EOK", nil},
		{RCNoLedger, 1, StatusNoLedger, 402, "ENOLEDGER", base.ErrNoLedger},
		{RCNoEntry, 2, StatusNoEntry, 403, "ENOENTRY", base.ErrNoEntry},
		{RCBadRequest, 100, StatusBadRequest, 404, "EBADREQ", ErrBadRequest},
		{RCIO, 101, StatusIO, 501, "EIO", ErrIO},
		{RCUnauthorized, 102, StatusUnauthorized, 502, "EUA", base.ErrUnauthorized},
		{RCBadVersion, 103, StatusBadVersion, 503, "EBADVERSION", ErrBadVersion},
		{RCFenced, 104, StatusFenced, 504, "EFENCED", base.ErrFenced},
		{RCReadOnly, 105, StatusReadOnly, 505, "EREADONLY", base.ErrReadOnly},
		{RCTooManyRequests, 106, StatusTooManyRequests, 506, "ETOOMANYREQUESTS", base.ErrBusy},
		{RCUnknownLedgerState, 107, StatusUnknownLedgerState, 507, "EUNKNOWNLEDGERSTATE", ErrUnknownLedgerState},
	}
	for _, c := range cases {
		if int32(c.rc) != c.v2 || int32(c.status) != c.v3 {
			t.Errorf("%s: values %d/%d, want %d/%d", c.name, c.rc, c.status, c.v2, c.v3)
		}
		if c.rc.Status() != c.status || c.status.RC() != c.rc {
			t.Errorf("%s: mapping %v <-> %v broken", c.name, c.rc.Status(), c.status.RC())
		}
		if c.rc.String() != c.name || c.status.String() != c.name || !c.rc.Known() || !c.status.Known() {
			t.Errorf("%s: names %q %q", c.name, c.rc, c.status)
		}
		err := c.rc.Err()
		if c.class == nil {
			if err != nil || c.status.Err() != nil {
				t.Errorf("EOK gives error %v", err)
			}
			continue
		}
		if !errors.Is(err, c.class) || !errors.Is(c.status.Err(), c.class) {
			t.Errorf("%s: %v does not match its class %v", c.name, err, c.class)
		}
		var e *Error
		if !errors.As(err, &e) || e.RC != c.rc {
			t.Errorf("%s: not an *Error with its code", c.name)
		}
		// And back: the class (wrapped, as a layer would) gives the code.
		wrapped := fmt.Errorf("engine: ledger 5: %w", c.class)
		if got := RCFromError(wrapped); got != c.rc {
			t.Errorf("RCFromError(%v) = %v, want %v", wrapped, got, c.rc)
		}
		if got := StatusFromError(wrapped); got != c.status {
			t.Errorf("StatusFromError(%v) = %v, want %v", wrapped, got, c.status)
		}
		if got := RCFromError(fmt.Errorf("client: %w", err)); got != c.rc {
			t.Errorf("RCFromError(wrapped *Error) = %v, want %v", got, c.rc)
		}
	}
}

func TestReturnCodeEdges(t *testing.T) {
	if RCFromError(nil) != RCOK {
		t.Error("nil error is not EOK")
	}
	for err, want := range map[error]RC{
		errors.New("disk on fire"):      RCIO,
		base.ErrNoSpace:                 RCReadOnly,
		base.ErrNotImplemented:          RCBadRequest,
		base.ErrTooLarge:                RCBadRequest,
		ErrMalformed:                    RCIO,
		fmt.Errorf("x: %w", ErrIO):      RCIO,
		base.ErrCorruption:              RCIO,
		fmt.Errorf("%w", ErrBadVersion): RCBadVersion,
	} {
		if got := RCFromError(err); got != want {
			t.Errorf("RCFromError(%v) = %v, want %v", err, got, want)
		}
	}
	unknown := RC(55)
	if unknown.Known() || unknown.Status() != StatusIO || unknown.String() != "RC(55)" {
		t.Errorf("unknown rc: %v %v", unknown.Known(), unknown.Status())
	}
	err := unknown.Err()
	var e *Error
	if !errors.As(err, &e) || e.RC != 55 || errors.Unwrap(err) != nil || RCFromError(err) != 55 {
		t.Errorf("unknown rc error %v", err)
	}
	if s := StatusCode(999); s.Known() || s.RC() != RCIO || s.String() != "StatusCode(999)" {
		t.Errorf("unknown status %v", s)
	}
}
