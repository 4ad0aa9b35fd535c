//! The exchange vocabulary: who we are in a case, case and message states,
//! message kinds, outbox states and answer policies. Stored as SMALLINT.

use crate::enums::small_enum;

small_enum! {
    /// Our side of a case.
    pub enum CaseRole {
        /// We asked.
        Requester = 0 => "requester",
        /// We were asked.
        Responder = 1 => "responder",
    }
}

small_enum! {
    /// Which way a message travelled.
    pub enum Direction {
        /// We sent it.
        Out = 0 => "out",
        /// We received it.
        In = 1 => "in",
    }
}

small_enum! {
    /// Where a case stands.
    pub enum CaseState {
        /// Being written, nothing sent.
        Draft = 0 => "draft",
        /// Accepted locally, waiting in the outbox.
        Queued = 1 => "queued",
        /// The other Party's node has it (signed receipt held).
        Delivered = 2 => "delivered",
        /// An officer of the answering Party has opened it.
        Read = 3 => "read",
        /// An answer is written and waits for a second person's approval.
        AwaitingApproval = 9 => "awaiting_approval",
        /// Answered in full.
        AnsweredFull = 4 => "answered_full",
        /// Answered in part, with a reason.
        AnsweredPartial = 5 => "answered_partial",
        /// Declined, with a reason.
        Declined = 6 => "declined",
        /// Closed by an officer.
        Closed = 7 => "closed",
        /// Could not be delivered before it expired.
        Failed = 8 => "failed",
    }
}

small_enum! {
    /// What a message is in its case.
    pub enum MessageKind {
        /// The request (a template's request part).
        Request = 0 => "request",
        /// An answer (a template's answer part).
        Answer = 1 => "answer",
        /// An attachment referenced by a request or answer.
        Attachment = 2 => "attachment",
    }
}

small_enum! {
    /// Where a message stands.
    pub enum MessageState {
        /// Written, waiting for a second person's approval.
        AwaitingApproval = 1 => "awaiting_approval",
        /// Sealed and in the outbox.
        Queued = 2 => "queued",
        /// Receipt from the recipient held.
        Delivered = 3 => "delivered",
        /// Not delivered before it expired.
        Failed = 4 => "failed",
        /// Cancelled by an operator before delivery.
        Cancelled = 5 => "cancelled",
        /// Received from another Party.
        Received = 6 => "received",
    }
}

small_enum! {
    /// An outbox row's state.
    pub enum OutboxState {
        /// Waiting for (another) delivery attempt.
        Pending = 0 => "pending",
        /// Delivered; the receipt is stored with the message.
        Delivered = 1 => "delivered",
        /// Given up after its expiry.
        Failed = 2 => "failed",
        /// Cancelled by an operator.
        Cancelled = 3 => "cancelled",
    }
}

small_enum! {
    /// How a node answers requests of a template.
    pub enum AnswerPolicy {
        /// The node answers from its data without an officer.
        Automatic = 0 => "automatic",
        /// An officer answers.
        Officer = 1 => "officer",
        /// An officer answers and a second person (an approver) approves.
        TwoPerson = 2 => "two-person",
    }
}
