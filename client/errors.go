package client

import (
	"errors"
	"fmt"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Errors.
var (
	// ErrClosed: the client, producer or consumer was closed.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionClosed: the connection to the broker failed or was
	// closed; what was pending on it fails with an error wrapping this.
	ErrConnectionClosed = errors.New("client: connection closed")
	// ErrTimeout: a request got no answer within Options.OperationTimeout,
	// or a message no receipt within ProducerOptions.SendTimeout.
	ErrTimeout = errors.New("client: timed out")
	// ErrInvalidTopic: a topic name that cannot be parsed.
	ErrInvalidTopic = errors.New("client: invalid topic name")
	// ErrInvalidURL: a service URL that is not pulsar://host[:port].
	ErrInvalidURL = errors.New("client: invalid service URL")
	// ErrMessageTooLarge: a message bigger than the broker's maximum
	// message size.
	ErrMessageTooLarge = errors.New("client: message too large")
	// ErrProtocol: the broker broke the protocol (an unexpected reply, a
	// receipt out of order, a lookup without a broker URL).
	ErrProtocol = errors.New("client: protocol violation")
	// ErrInvalidOptions: an Options struct failed Validate.
	ErrInvalidOptions = errors.New("client: invalid options")
	// ErrCorruptMessage: a delivered entry could not be decoded; it was
	// acknowledged with a validation error, as Pulsar clients do.
	ErrCorruptMessage = errors.New("client: corrupt message")
)

// ServerError is an error the broker returned (ERROR, SEND_ERROR, or a
// failed lookup).
type ServerError struct {
	Code    pulsar.ServerError
	Message string
}

func (e *ServerError) Error() string {
	if e.Message == "" {
		return "client: server error: " + e.Code.String()
	}
	return fmt.Sprintf("client: server error: %v: %s", e.Code, e.Message)
}

// IsServerError reports whether err is (or wraps) a ServerError with code.
func IsServerError(err error, code pulsar.ServerError) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}
