package events

// Moderation and invite-policy types: what the admin API changes beyond
// the #account events relays see.
const (
	TypeAccountTakedown = "account.takedown" // AccountTakedown
	TypeRecordTakedown  = "record.takedown"  // RecordTakedown
	TypeAccountInvites  = "account.invites"  // AccountInvites
)

// AccountTakedown is an account takedown or its reversal, with the
// moderator's reference (com.atproto.admin.defs#statusAttr). It is
// appended beside the #account event that tells relays, and carries what
// that event cannot: the ref.
type AccountTakedown struct {
	Applied bool   `json:"applied"`
	Ref     string `json:"ref,omitempty"`
}

// RecordTakedown takes one record of the event's repo down (no longer
// served by getRecord or listRecords; it stays in the repo) or reverses
// that.
type RecordTakedown struct {
	Collection string `json:"collection"`
	RKey       string `json:"rkey"`
	Applied    bool   `json:"applied"`
	Ref        string `json:"ref,omitempty"`
}

// AccountInvites turns an account's own invite codes off or on
// (com.atproto.admin.disableAccountInvites / enableAccountInvites).
type AccountInvites struct {
	Disabled bool `json:"disabled"`
}

func (*AccountTakedown) Type() string { return TypeAccountTakedown }
func (*RecordTakedown) Type() string  { return TypeRecordTakedown }
func (*AccountInvites) Type() string  { return TypeAccountInvites }

func (*AccountTakedown) Secret() bool { return false }
func (*RecordTakedown) Secret() bool  { return false }
func (*AccountInvites) Secret() bool  { return false }
