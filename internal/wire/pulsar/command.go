package pulsar

import "fmt"

// Decode decodes an encoded BaseCommand (a frame's Command bytes) into c,
// reusing c's storage. Unknown fields are skipped. It fails with
// ErrMalformed on invalid protobuf, and with ErrMissingField when a required
// field is absent, including the type and the sub-message of a known type
// (PING and PONG may omit their empty sub-message). An unknown type value is
// not an error: Type is set and Type.Known reports false, so that a broker
// can answer it.
func (c *Command) Decode(b []byte) error {
	c.Type = 0
	d := newDecoder(b, "BaseCommand")
	var haveType bool
	var subs [2]uint64 // sub-message field numbers seen (all are < 128)
	for d.next() {
		if d.num == 1 {
			if v, ok := d.uint64(); ok {
				c.Type, haveType = Type(int32(v)), true
			}
			continue
		}
		if d.wt != wtBytes || d.num >= 128 {
			d.skip()
			continue
		}
		num := d.num
		sub, ok := d.readBytes()
		if !ok {
			break
		}
		known, err := c.decodeField(num, sub)
		if err != nil {
			return err
		}
		if known {
			subs[num/64] |= 1 << (num % 64)
		}
	}
	if d.err != nil {
		return d.err
	}
	if !haveType {
		return fmt.Errorf("%w: BaseCommand field 1 (type)", ErrMissingField)
	}
	t := int(c.Type)
	if c.Type.Known() && c.Type != TypePing && c.Type != TypePong && subs[t/64]&(1<<(t%64)) == 0 {
		return fmt.Errorf("%w: BaseCommand has no sub-message for %v", ErrMissingField, c.Type)
	}
	return nil
}

// AppendBaseCommand appends the BaseCommand protobuf for c: the type and the
// sub-message of that type. For a type this codec does not know, only the
// type is written.
func AppendBaseCommand(dst []byte, c *Command) []byte {
	dst = appendInt32(dst, 1, int32(c.Type))
	if !c.Type.Known() {
		return dst
	}
	dst, s := beginMessage(dst, int(c.Type))
	dst, _ = c.appendField(dst, c.Type)
	return endMessage(dst, s)
}

// RequestID returns the request id of the command in c, for the command
// types that carry one. A broker uses it to answer any request, including
// those it does not support, with ERROR.
func (c *Command) RequestID() (uint64, bool) {
	switch c.Type {
	case TypeSubscribe:
		return c.Subscribe.RequestID, true
	case TypeProducer:
		return c.Producer.RequestID, true
	case TypeAck:
		return c.Ack.RequestID, c.Ack.HasRequestID
	case TypeUnsubscribe:
		return c.Unsubscribe.RequestID, true
	case TypeSuccess:
		return c.Success.RequestID, true
	case TypeError:
		return c.Error.RequestID, true
	case TypeCloseProducer:
		return c.CloseProducer.RequestID, true
	case TypeCloseConsumer:
		return c.CloseConsumer.RequestID, true
	case TypeProducerSuccess:
		return c.ProducerSuccess.RequestID, true
	case TypePartitionedMetadata:
		return c.PartitionedMetadata.RequestID, true
	case TypePartitionedMetadataResponse:
		return c.PartitionedMetadataResponse.RequestID, true
	case TypeLookup:
		return c.Lookup.RequestID, true
	case TypeLookupResponse:
		return c.LookupResponse.RequestID, true
	case TypeConsumerStats:
		return c.ConsumerStats.RequestID, true
	case TypeConsumerStatsResponse:
		return c.ConsumerStatsResponse.RequestID, true
	case TypeSeek:
		return c.Seek.RequestID, true
	case TypeGetLastMessageID:
		return c.GetLastMessageID.RequestID, true
	case TypeGetLastMessageIDResponse:
		return c.GetLastMessageIDResponse.RequestID, true
	case TypeGetTopicsOfNamespace:
		return c.GetTopicsOfNamespace.RequestID, true
	case TypeGetTopicsOfNamespaceResponse:
		return c.GetTopicsOfNamespaceResponse.RequestID, true
	case TypeGetSchema:
		return c.GetSchema.RequestID, true
	case TypeGetSchemaResponse:
		return c.GetSchemaResponse.RequestID, true
	case TypeAckResponse:
		return c.AckResponse.RequestID, true
	case TypeGetOrCreateSchema:
		return c.GetOrCreateSchema.RequestID, true
	case TypeGetOrCreateSchemaResponse:
		return c.GetOrCreateSchemaResponse.RequestID, true
	case TypeNewTxn:
		return c.NewTxn.RequestID, true
	case TypeNewTxnResponse:
		return c.NewTxnResponse.RequestID, true
	case TypeAddPartitionToTxn:
		return c.AddPartitionToTxn.RequestID, true
	case TypeAddPartitionToTxnResponse:
		return c.AddPartitionToTxnResponse.RequestID, true
	case TypeAddSubscriptionToTxn:
		return c.AddSubscriptionToTxn.RequestID, true
	case TypeAddSubscriptionToTxnResponse:
		return c.AddSubscriptionToTxnResponse.RequestID, true
	case TypeEndTxn:
		return c.EndTxn.RequestID, true
	case TypeEndTxnResponse:
		return c.EndTxnResponse.RequestID, true
	case TypeEndTxnOnPartition:
		return c.EndTxnOnPartition.RequestID, true
	case TypeEndTxnOnPartitionResponse:
		return c.EndTxnOnPartitionResponse.RequestID, true
	case TypeEndTxnOnSubscription:
		return c.EndTxnOnSubscription.RequestID, true
	case TypeEndTxnOnSubscriptionResponse:
		return c.EndTxnOnSubscriptionResponse.RequestID, true
	case TypeTcClientConnectRequest:
		return c.TcClientConnectRequest.RequestID, true
	case TypeTcClientConnectResponse:
		return c.TcClientConnectResponse.RequestID, true
	case TypeWatchTopicList:
		return c.WatchTopicList.RequestID, true
	case TypeWatchTopicListSuccess:
		return c.WatchTopicListSuccess.RequestID, true
	case TypeWatchTopicListClose:
		return c.WatchTopicListClose.RequestID, true
	}
	return 0, false
}
