package pulsar

// The dispatch between BaseCommand field numbers and the sub-messages of
// Command. A new command needs a field in commandFields and a case in both
// switches (TestEveryTypeRoundTrips fails otherwise).

// Command is a decoded BaseCommand: its Type and one field per command type.
// Only the field matching Type is meaningful after Decode; the others keep
// whatever an earlier Decode left there, so that one Command reused for a
// whole connection keeps the capacity of every slice it grew.
//
// Lifetime: strings are ordinary Go strings and may be kept. Byte slices
// alias the decoded buffer, and slices of ids, key/values and ranges are
// reused by the next Decode; copy them to keep them past that.
type Command struct {
	Type Type // BaseCommand.type (1)

	Connect                         CommandConnect                          // 2
	Connected                       CommandConnected                        // 3
	Subscribe                       CommandSubscribe                        // 4
	Producer                        CommandProducer                         // 5
	Send                            CommandSend                             // 6
	SendReceipt                     CommandSendReceipt                      // 7
	SendError                       CommandSendError                        // 8
	Message                         CommandMessage                          // 9
	Ack                             CommandAck                              // 10
	Flow                            CommandFlow                             // 11
	Unsubscribe                     CommandUnsubscribe                      // 12
	Success                         CommandSuccess                          // 13
	Error                           CommandError                            // 14
	CloseProducer                   CommandCloseProducer                    // 15
	CloseConsumer                   CommandCloseConsumer                    // 16
	ProducerSuccess                 CommandProducerSuccess                  // 17
	RedeliverUnacknowledgedMessages CommandRedeliverUnacknowledgedMessages  // 20
	PartitionedMetadata             CommandPartitionedTopicMetadata         // 21
	PartitionedMetadataResponse     CommandPartitionedTopicMetadataResponse // 22
	Lookup                          CommandLookupTopic                      // 23
	LookupResponse                  CommandLookupTopicResponse              // 24
	ConsumerStats                   CommandConsumerStats                    // 25
	ConsumerStatsResponse           CommandConsumerStatsResponse            // 26
	ReachedEndOfTopic               CommandReachedEndOfTopic                // 27
	Seek                            CommandSeek                             // 28
	GetLastMessageID                CommandGetLastMessageID                 // 29
	GetLastMessageIDResponse        CommandGetLastMessageIDResponse         // 30
	ActiveConsumerChange            CommandActiveConsumerChange             // 31
	GetTopicsOfNamespace            CommandGetTopicsOfNamespace             // 32
	GetTopicsOfNamespaceResponse    CommandGetTopicsOfNamespaceResponse     // 33
	GetSchema                       CommandGetSchema                        // 34
	GetSchemaResponse               CommandGetSchemaResponse                // 35
	AuthChallenge                   CommandAuthChallenge                    // 36
	AuthResponse                    CommandAuthResponse                     // 37
	AckResponse                     CommandAckResponse                      // 38
	GetOrCreateSchema               CommandGetOrCreateSchema                // 39
	GetOrCreateSchemaResponse       CommandGetOrCreateSchemaResponse        // 40
	NewTxn                          CommandNewTxn                           // 50
	NewTxnResponse                  CommandTxnResponse                      // 51
	AddPartitionToTxn               CommandAddPartitionToTxn                // 52
	AddPartitionToTxnResponse       CommandTxnResponse                      // 53
	AddSubscriptionToTxn            CommandAddSubscriptionToTxn             // 54
	AddSubscriptionToTxnResponse    CommandTxnResponse                      // 55
	EndTxn                          CommandEndTxn                           // 56
	EndTxnResponse                  CommandTxnResponse                      // 57
	EndTxnOnPartition               CommandEndTxnOnPartition                // 58
	EndTxnOnPartitionResponse       CommandTxnResponse                      // 59
	EndTxnOnSubscription            CommandEndTxnOnSubscription             // 60
	EndTxnOnSubscriptionResponse    CommandTxnResponse                      // 61
	TcClientConnectRequest          CommandTcClientConnectRequest           // 62
	TcClientConnectResponse         CommandTcClientConnectResponse          // 63
	WatchTopicList                  CommandWatchTopicList                   // 64
	WatchTopicListSuccess           CommandWatchTopicListSuccess            // 65
	WatchTopicUpdate                CommandWatchTopicUpdate                 // 66
	WatchTopicListClose             CommandWatchTopicListClose              // 67
	TopicMigrated                   CommandTopicMigrated                    // 68
}

// decodeField decodes BaseCommand field num (a command's sub-message).
// known is false for a field number that is not a command.
func (c *Command) decodeField(num int, b []byte) (known bool, err error) {
	switch num {
	case 2:
		return true, c.Connect.decode(b)
	case 3:
		return true, c.Connected.decode(b)
	case 4:
		return true, c.Subscribe.decode(b)
	case 5:
		return true, c.Producer.decode(b)
	case 6:
		return true, c.Send.decode(b)
	case 7:
		return true, c.SendReceipt.decode(b)
	case 8:
		return true, c.SendError.decode(b)
	case 9:
		return true, c.Message.decode(b)
	case 10:
		return true, c.Ack.decode(b)
	case 11:
		return true, c.Flow.decode(b)
	case 12:
		return true, c.Unsubscribe.decode(b)
	case 13:
		return true, c.Success.decode(b)
	case 14:
		return true, c.Error.decode(b)
	case 15:
		return true, c.CloseProducer.decode(b)
	case 16:
		return true, c.CloseConsumer.decode(b)
	case 17:
		return true, c.ProducerSuccess.decode(b)
	case 18:
		return true, nil
	case 19:
		return true, nil
	case 20:
		return true, c.RedeliverUnacknowledgedMessages.decode(b)
	case 21:
		return true, c.PartitionedMetadata.decode(b)
	case 22:
		return true, c.PartitionedMetadataResponse.decode(b)
	case 23:
		return true, c.Lookup.decode(b)
	case 24:
		return true, c.LookupResponse.decode(b)
	case 25:
		return true, c.ConsumerStats.decode(b)
	case 26:
		return true, c.ConsumerStatsResponse.decode(b)
	case 27:
		return true, c.ReachedEndOfTopic.decode(b)
	case 28:
		return true, c.Seek.decode(b)
	case 29:
		return true, c.GetLastMessageID.decode(b)
	case 30:
		return true, c.GetLastMessageIDResponse.decode(b)
	case 31:
		return true, c.ActiveConsumerChange.decode(b)
	case 32:
		return true, c.GetTopicsOfNamespace.decode(b)
	case 33:
		return true, c.GetTopicsOfNamespaceResponse.decode(b)
	case 34:
		return true, c.GetSchema.decode(b)
	case 35:
		return true, c.GetSchemaResponse.decode(b)
	case 36:
		return true, c.AuthChallenge.decode(b)
	case 37:
		return true, c.AuthResponse.decode(b)
	case 38:
		return true, c.AckResponse.decode(b)
	case 39:
		return true, c.GetOrCreateSchema.decode(b)
	case 40:
		return true, c.GetOrCreateSchemaResponse.decode(b)
	case 50:
		return true, c.NewTxn.decode(b)
	case 51:
		return true, c.NewTxnResponse.decode(b)
	case 52:
		return true, c.AddPartitionToTxn.decode(b)
	case 53:
		return true, c.AddPartitionToTxnResponse.decode(b)
	case 54:
		return true, c.AddSubscriptionToTxn.decode(b)
	case 55:
		return true, c.AddSubscriptionToTxnResponse.decode(b)
	case 56:
		return true, c.EndTxn.decode(b)
	case 57:
		return true, c.EndTxnResponse.decode(b)
	case 58:
		return true, c.EndTxnOnPartition.decode(b)
	case 59:
		return true, c.EndTxnOnPartitionResponse.decode(b)
	case 60:
		return true, c.EndTxnOnSubscription.decode(b)
	case 61:
		return true, c.EndTxnOnSubscriptionResponse.decode(b)
	case 62:
		return true, c.TcClientConnectRequest.decode(b)
	case 63:
		return true, c.TcClientConnectResponse.decode(b)
	case 64:
		return true, c.WatchTopicList.decode(b)
	case 65:
		return true, c.WatchTopicListSuccess.decode(b)
	case 66:
		return true, c.WatchTopicUpdate.decode(b)
	case 67:
		return true, c.WatchTopicListClose.decode(b)
	case 68:
		return true, c.TopicMigrated.decode(b)
	}
	return false, nil
}

// appendField appends the fields of the sub-message for type t, and
// reports whether t is a known command type.
func (c *Command) appendField(dst []byte, t Type) ([]byte, bool) {
	switch t {
	case TypeConnect:
		return c.Connect.appendTo(dst), true
	case TypeConnected:
		return c.Connected.appendTo(dst), true
	case TypeSubscribe:
		return c.Subscribe.appendTo(dst), true
	case TypeProducer:
		return c.Producer.appendTo(dst), true
	case TypeSend:
		return c.Send.appendTo(dst), true
	case TypeSendReceipt:
		return c.SendReceipt.appendTo(dst), true
	case TypeSendError:
		return c.SendError.appendTo(dst), true
	case TypeMessage:
		return c.Message.appendTo(dst), true
	case TypeAck:
		return c.Ack.appendTo(dst), true
	case TypeFlow:
		return c.Flow.appendTo(dst), true
	case TypeUnsubscribe:
		return c.Unsubscribe.appendTo(dst), true
	case TypeSuccess:
		return c.Success.appendTo(dst), true
	case TypeError:
		return c.Error.appendTo(dst), true
	case TypeCloseProducer:
		return c.CloseProducer.appendTo(dst), true
	case TypeCloseConsumer:
		return c.CloseConsumer.appendTo(dst), true
	case TypeProducerSuccess:
		return c.ProducerSuccess.appendTo(dst), true
	case TypePing:
		return dst, true
	case TypePong:
		return dst, true
	case TypeRedeliverUnacknowledgedMessages:
		return c.RedeliverUnacknowledgedMessages.appendTo(dst), true
	case TypePartitionedMetadata:
		return c.PartitionedMetadata.appendTo(dst), true
	case TypePartitionedMetadataResponse:
		return c.PartitionedMetadataResponse.appendTo(dst), true
	case TypeLookup:
		return c.Lookup.appendTo(dst), true
	case TypeLookupResponse:
		return c.LookupResponse.appendTo(dst), true
	case TypeConsumerStats:
		return c.ConsumerStats.appendTo(dst), true
	case TypeConsumerStatsResponse:
		return c.ConsumerStatsResponse.appendTo(dst), true
	case TypeReachedEndOfTopic:
		return c.ReachedEndOfTopic.appendTo(dst), true
	case TypeSeek:
		return c.Seek.appendTo(dst), true
	case TypeGetLastMessageID:
		return c.GetLastMessageID.appendTo(dst), true
	case TypeGetLastMessageIDResponse:
		return c.GetLastMessageIDResponse.appendTo(dst), true
	case TypeActiveConsumerChange:
		return c.ActiveConsumerChange.appendTo(dst), true
	case TypeGetTopicsOfNamespace:
		return c.GetTopicsOfNamespace.appendTo(dst), true
	case TypeGetTopicsOfNamespaceResponse:
		return c.GetTopicsOfNamespaceResponse.appendTo(dst), true
	case TypeGetSchema:
		return c.GetSchema.appendTo(dst), true
	case TypeGetSchemaResponse:
		return c.GetSchemaResponse.appendTo(dst), true
	case TypeAuthChallenge:
		return c.AuthChallenge.appendTo(dst), true
	case TypeAuthResponse:
		return c.AuthResponse.appendTo(dst), true
	case TypeAckResponse:
		return c.AckResponse.appendTo(dst), true
	case TypeGetOrCreateSchema:
		return c.GetOrCreateSchema.appendTo(dst), true
	case TypeGetOrCreateSchemaResponse:
		return c.GetOrCreateSchemaResponse.appendTo(dst), true
	case TypeNewTxn:
		return c.NewTxn.appendTo(dst), true
	case TypeNewTxnResponse:
		return c.NewTxnResponse.appendTo(dst), true
	case TypeAddPartitionToTxn:
		return c.AddPartitionToTxn.appendTo(dst), true
	case TypeAddPartitionToTxnResponse:
		return c.AddPartitionToTxnResponse.appendTo(dst), true
	case TypeAddSubscriptionToTxn:
		return c.AddSubscriptionToTxn.appendTo(dst), true
	case TypeAddSubscriptionToTxnResponse:
		return c.AddSubscriptionToTxnResponse.appendTo(dst), true
	case TypeEndTxn:
		return c.EndTxn.appendTo(dst), true
	case TypeEndTxnResponse:
		return c.EndTxnResponse.appendTo(dst), true
	case TypeEndTxnOnPartition:
		return c.EndTxnOnPartition.appendTo(dst), true
	case TypeEndTxnOnPartitionResponse:
		return c.EndTxnOnPartitionResponse.appendTo(dst), true
	case TypeEndTxnOnSubscription:
		return c.EndTxnOnSubscription.appendTo(dst), true
	case TypeEndTxnOnSubscriptionResponse:
		return c.EndTxnOnSubscriptionResponse.appendTo(dst), true
	case TypeTcClientConnectRequest:
		return c.TcClientConnectRequest.appendTo(dst), true
	case TypeTcClientConnectResponse:
		return c.TcClientConnectResponse.appendTo(dst), true
	case TypeWatchTopicList:
		return c.WatchTopicList.appendTo(dst), true
	case TypeWatchTopicListSuccess:
		return c.WatchTopicListSuccess.appendTo(dst), true
	case TypeWatchTopicUpdate:
		return c.WatchTopicUpdate.appendTo(dst), true
	case TypeWatchTopicListClose:
		return c.WatchTopicListClose.appendTo(dst), true
	case TypeTopicMigrated:
		return c.TopicMigrated.appendTo(dst), true
	}
	return dst, false
}
