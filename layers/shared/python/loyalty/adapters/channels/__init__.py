"""The channels a message made from a template leaves through (services/messaging.ChannelSender)."""
