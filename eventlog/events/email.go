package events

// Emailed-token and email sign-in types.
const (
	TypeEmailTokenIssued = "email_token.issued" // EmailTokenIssued (secret)
	TypeEmailTokenUsed   = "email_token.used"   // EmailTokenUsed
	TypeEmailAuthFactor  = "account.email_2fa"  // EmailAuthFactor
)

// Purposes of emailed tokens.
const (
	PurposeConfirmEmail  = "confirm_email"
	PurposeUpdateEmail   = "update_email"
	PurposeResetPassword = "reset_password"
	PurposeDeleteAccount = "delete_account"
	PurposePLCOperation  = "plc_operation"
	PurposeSignIn        = "sign_in" // the email sign-in code (2FA)
)

// EmailTokenIssued records a token mailed to an account: only its hash
// (SHA-256 of the normalised token) is kept. It replaces the account's
// previous token of the same purpose. The token is bound to the address
// it was sent to and expires at ExpiresAt.
type EmailTokenIssued struct {
	Purpose   string `json:"purpose"`
	Hash      string `json:"hash"` // hex
	Email     string `json:"email"`
	ExpiresAt string `json:"expiresAt"` // RFC 3339
}

// EmailTokenUsed retires the account's token of Purpose (every purpose
// when ""): used once, or void because the address changed.
type EmailTokenUsed struct {
	Purpose string `json:"purpose,omitempty"`
}

// EmailAuthFactor turns the email sign-in code on or off.
type EmailAuthFactor struct {
	Enabled bool `json:"enabled"`
}

func (*EmailTokenIssued) Type() string { return TypeEmailTokenIssued }
func (*EmailTokenUsed) Type() string   { return TypeEmailTokenUsed }
func (*EmailAuthFactor) Type() string  { return TypeEmailAuthFactor }

func (*EmailTokenIssued) Secret() bool { return true }
func (*EmailTokenUsed) Secret() bool   { return false }
func (*EmailAuthFactor) Secret() bool  { return false }
