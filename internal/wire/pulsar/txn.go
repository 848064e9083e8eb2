package pulsar

// Transaction commands. Magnetar has no transaction coordinator yet; these
// are decoded fully so that a broker can answer each request with its
// response type carrying an error (or with ERROR), and encoded so tests and
// a future coordinator can produce them.

// CommandTcClientConnectRequest connects a client to a transaction
// coordinator.
type CommandTcClientConnectRequest struct {
	RequestID uint64 // 1, required
	TcID      uint64 // 2, required
}

func (m *CommandTcClientConnectRequest) decode(b []byte) error {
	*m = CommandTcClientConnectRequest{}
	d := newDecoder(b, "CommandTcClientConnectRequest")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TcID, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandTcClientConnectRequest) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	return appendUint64(dst, 2, m.TcID)
}

// CommandTcClientConnectResponse answers TC_CLIENT_CONNECT_REQUEST.
type CommandTcClientConnectResponse struct {
	RequestID uint64      // 1, required
	Error     ServerError // 2
	HasError  bool        //
	Message   string      // 3
}

func (m *CommandTcClientConnectResponse) decode(b []byte) error {
	*m = CommandTcClientConnectResponse{}
	d := newDecoder(b, "CommandTcClientConnectResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.Error, m.HasError = ServerError(v), true
			}
		case 3:
			if v, ok := d.string(); ok {
				m.Message = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandTcClientConnectResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.HasError {
		dst = appendInt32(dst, 2, int32(m.Error))
	}
	if m.Message != "" {
		dst = appendString(dst, 3, m.Message)
	}
	return dst
}

// CommandNewTxn opens a transaction.
type CommandNewTxn struct {
	RequestID     uint64 // 1, required
	TxnTTLSeconds uint64 // 2
	TcID          uint64 // 3
}

func (m *CommandNewTxn) decode(b []byte) error {
	*m = CommandNewTxn{}
	d := newDecoder(b, "CommandNewTxn")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnTTLSeconds = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TcID = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandNewTxn) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.TxnTTLSeconds != 0 {
		dst = appendUint64(dst, 2, m.TxnTTLSeconds)
	}
	if m.TcID != 0 {
		dst = appendUint64(dst, 3, m.TcID)
	}
	return dst
}

// CommandTxnResponse is the shape shared by NEW_TXN_RESPONSE,
// ADD_PARTITION_TO_TXN_RESPONSE, ADD_SUBSCRIPTION_TO_TXN_RESPONSE,
// END_TXN_RESPONSE, END_TXN_ON_PARTITION_RESPONSE and
// END_TXN_ON_SUBSCRIPTION_RESPONSE (identical field numbers and types).
type CommandTxnResponse struct {
	RequestID      uint64      // 1, required
	TxnidLeastBits uint64      // 2
	TxnidMostBits  uint64      // 3
	Error          ServerError // 4
	HasError       bool        //
	Message        string      // 5
}

func (m *CommandTxnResponse) decode(b []byte) error {
	*m = CommandTxnResponse{}
	d := newDecoder(b, "CommandTxnResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.Error, m.HasError = ServerError(v), true
			}
		case 5:
			if v, ok := d.string(); ok {
				m.Message = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandTxnResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.TxnidLeastBits != 0 {
		dst = appendUint64(dst, 2, m.TxnidLeastBits)
	}
	if m.TxnidMostBits != 0 {
		dst = appendUint64(dst, 3, m.TxnidMostBits)
	}
	if m.HasError {
		dst = appendInt32(dst, 4, int32(m.Error))
	}
	if m.Message != "" {
		dst = appendString(dst, 5, m.Message)
	}
	return dst
}

// CommandAddPartitionToTxn adds produced-to partitions to a transaction.
type CommandAddPartitionToTxn struct {
	RequestID      uint64   // 1, required
	TxnidLeastBits uint64   // 2
	TxnidMostBits  uint64   // 3
	Partitions     []string // 4
}

func (m *CommandAddPartitionToTxn) decode(b []byte) error {
	*m = CommandAddPartitionToTxn{Partitions: m.Partitions[:0]}
	d := newDecoder(b, "CommandAddPartitionToTxn")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			if v, ok := d.string(); ok {
				m.Partitions = append(m.Partitions, v)
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandAddPartitionToTxn) appendTo(dst []byte) []byte {
	dst = appendTxnHeader(dst, m.RequestID, m.TxnidLeastBits, m.TxnidMostBits)
	for _, p := range m.Partitions {
		dst = appendString(dst, 4, p)
	}
	return dst
}

func appendTxnHeader(dst []byte, requestID, least, most uint64) []byte {
	dst = appendUint64(dst, 1, requestID)
	if least != 0 {
		dst = appendUint64(dst, 2, least)
	}
	if most != 0 {
		dst = appendUint64(dst, 3, most)
	}
	return dst
}

// CommandAddSubscriptionToTxn adds acknowledging subscriptions to a
// transaction.
type CommandAddSubscriptionToTxn struct {
	RequestID      uint64            // 1, required
	TxnidLeastBits uint64            // 2
	TxnidMostBits  uint64            // 3
	Subscriptions  []TxnSubscription // 4
}

func (m *CommandAddSubscriptionToTxn) decode(b []byte) error {
	*m = CommandAddSubscriptionToTxn{Subscriptions: m.Subscriptions[:0]}
	d := newDecoder(b, "CommandAddSubscriptionToTxn")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			var s *TxnSubscription
			m.Subscriptions, s = grow(m.Subscriptions)
			if !d.message(s.decode) {
				m.Subscriptions = m.Subscriptions[:len(m.Subscriptions)-1]
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandAddSubscriptionToTxn) appendTo(dst []byte) []byte {
	dst = appendTxnHeader(dst, m.RequestID, m.TxnidLeastBits, m.TxnidMostBits)
	for i := range m.Subscriptions {
		var s int
		dst, s = beginMessage(dst, 4)
		dst = endMessage(m.Subscriptions[i].appendTo(dst), s)
	}
	return dst
}

// CommandEndTxn commits or aborts a transaction. TxnAction is always
// written.
type CommandEndTxn struct {
	RequestID      uint64    // 1, required
	TxnidLeastBits uint64    // 2
	TxnidMostBits  uint64    // 3
	TxnAction      TxnAction // 4, always written
}

func (m *CommandEndTxn) decode(b []byte) error {
	*m = CommandEndTxn{}
	d := newDecoder(b, "CommandEndTxn")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.TxnAction = TxnAction(v)
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandEndTxn) appendTo(dst []byte) []byte {
	dst = appendTxnHeader(dst, m.RequestID, m.TxnidLeastBits, m.TxnidMostBits)
	return appendInt32(dst, 4, int32(m.TxnAction))
}

// CommandEndTxnOnPartition ends a transaction on one partition (broker to
// broker). TxnAction is always written.
type CommandEndTxnOnPartition struct {
	RequestID                    uint64    // 1, required
	TxnidLeastBits               uint64    // 2
	TxnidMostBits                uint64    // 3
	Topic                        string    // 4
	TxnAction                    TxnAction // 5, always written
	TxnidLeastBitsOfLowWatermark uint64    // 6
	HasLowWatermark              bool      //
}

func (m *CommandEndTxnOnPartition) decode(b []byte) error {
	*m = CommandEndTxnOnPartition{}
	d := newDecoder(b, "CommandEndTxnOnPartition")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			if v, ok := d.string(); ok {
				m.Topic = v
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.TxnAction = TxnAction(v)
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBitsOfLowWatermark, m.HasLowWatermark = v, true
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandEndTxnOnPartition) appendTo(dst []byte) []byte {
	dst = appendTxnHeader(dst, m.RequestID, m.TxnidLeastBits, m.TxnidMostBits)
	if m.Topic != "" {
		dst = appendString(dst, 4, m.Topic)
	}
	dst = appendInt32(dst, 5, int32(m.TxnAction))
	if m.HasLowWatermark {
		dst = appendUint64(dst, 6, m.TxnidLeastBitsOfLowWatermark)
	}
	return dst
}

// CommandEndTxnOnSubscription ends a transaction on one subscription (broker
// to broker). TxnAction is always written.
type CommandEndTxnOnSubscription struct {
	RequestID                    uint64          // 1, required
	TxnidLeastBits               uint64          // 2
	TxnidMostBits                uint64          // 3
	Subscription                 TxnSubscription // 4
	HasSubscription              bool            //
	TxnAction                    TxnAction       // 5, always written
	TxnidLeastBitsOfLowWatermark uint64          // 6
	HasLowWatermark              bool            //
}

func (m *CommandEndTxnOnSubscription) decode(b []byte) error {
	*m = CommandEndTxnOnSubscription{}
	d := newDecoder(b, "CommandEndTxnOnSubscription")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			m.HasSubscription = d.message(m.Subscription.decode) || m.HasSubscription
		case 5:
			if v, ok := d.uint64(); ok {
				m.TxnAction = TxnAction(v)
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBitsOfLowWatermark, m.HasLowWatermark = v, true
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandEndTxnOnSubscription) appendTo(dst []byte) []byte {
	dst = appendTxnHeader(dst, m.RequestID, m.TxnidLeastBits, m.TxnidMostBits)
	if m.HasSubscription {
		var s int
		dst, s = beginMessage(dst, 4)
		dst = endMessage(m.Subscription.appendTo(dst), s)
	}
	dst = appendInt32(dst, 5, int32(m.TxnAction))
	if m.HasLowWatermark {
		dst = appendUint64(dst, 6, m.TxnidLeastBitsOfLowWatermark)
	}
	return dst
}
