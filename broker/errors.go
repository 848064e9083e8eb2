package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
)

// Error is a failure the broker reports to a client: over the binary
// protocol as Code, over HTTP as Status with {"reason": Message}.
type Error struct {
	Code    pulsar.ServerError
	Status  int
	Message string
	cause   error
}

func (e *Error) Error() string { return "broker: " + e.Message }

func (e *Error) Unwrap() error { return e.cause }

// Errors of the broker: classes tested with errors.Is; the broker's
// errors of each class wrap it.
var (
	ErrTopicNotFound      = &Error{Code: pulsar.TopicNotFound, Status: http.StatusNotFound, Message: "topic not found"}
	ErrNotFound           = &Error{Code: pulsar.MetadataError, Status: http.StatusNotFound, Message: "not found"}
	ErrAlreadyExists      = &Error{Code: pulsar.MetadataError, Status: http.StatusConflict, Message: "already exists"}
	ErrPrecondition       = &Error{Code: pulsar.MetadataError, Status: http.StatusPreconditionFailed, Message: "precondition failed"}
	ErrBadRequest         = &Error{Code: pulsar.MetadataError, Status: http.StatusBadRequest, Message: "bad request"}
	ErrNotAllowed         = &Error{Code: pulsar.NotAllowedError, Status: http.StatusMethodNotAllowed, Message: "not allowed"}
	ErrClosed             = &Error{Code: pulsar.ServiceNotReady, Status: http.StatusServiceUnavailable, Message: "broker closed", cause: base.ErrClosed}
	ErrSubscriptionGone   = &Error{Code: pulsar.SubscriptionNotFound, Status: http.StatusNotFound, Message: "subscription not found"}
	ErrConsumerNotFound   = &Error{Code: pulsar.MetadataError, Status: http.StatusNotFound, Message: "consumer not found"}
	ErrServiceNotReady    = &Error{Code: pulsar.ServiceNotReady, Status: http.StatusServiceUnavailable, Message: "service not ready"}
	ErrProducerBusy       = &Error{Code: pulsar.ProducerBusy, Status: http.StatusConflict, Message: "producer busy"}
	ErrProducerFenced     = &Error{Code: pulsar.ProducerFenced, Status: http.StatusConflict, Message: "producer fenced"}
	ErrConsumerBusy       = &Error{Code: pulsar.ConsumerBusy, Status: http.StatusConflict, Message: "consumer busy"}
	ErrIncompatibleSchema = &Error{Code: pulsar.IncompatibleSchema, Status: http.StatusConflict, Message: "incompatible schema"}
)

// errorf makes an error of class with a message of its own.
func errorf(class *Error, format string, args ...any) *Error {
	return &Error{Code: class.Code, Status: class.Status, Message: fmt.Sprintf(format, args...), cause: class}
}

// wrapErr makes an error of class around cause.
func wrapErr(class *Error, cause error, format string, args ...any) *Error {
	return &Error{Code: class.Code, Status: class.Status, Message: fmt.Sprintf(format, args...) + ": " + cause.Error(),
		cause: errors.Join(class, cause)}
}

// serverError maps err to the protocol's error code and a message.
func serverError(err error) (pulsar.ServerError, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, metastore.ErrUnavailable):
		return pulsar.ServiceNotReady, err.Error()
	case errors.Is(err, managedledger.ErrFenced), errors.Is(err, base.ErrClosed):
		return pulsar.ServiceNotReady, err.Error()
	case errors.Is(err, metastore.ErrBadVersion):
		return pulsar.MetadataError, err.Error()
	}
	return pulsar.UnknownError, err.Error()
}

// httpStatus maps err to an HTTP status and a reason.
func httpStatus(err error) (int, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, e.Message
	}
	switch {
	case errors.Is(err, metastore.ErrNotFound), errors.Is(err, managedledger.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, metastore.ErrNodeExists):
		return http.StatusConflict, err.Error()
	case errors.Is(err, metastore.ErrBadVersion):
		return http.StatusConflict, err.Error()
	case errors.Is(err, managedledger.ErrInvalidPosition):
		return http.StatusPreconditionFailed, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, metastore.ErrUnavailable), errors.Is(err, base.ErrClosed):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}
