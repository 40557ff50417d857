package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// Kinds of templated message, with their subjects (the reference's where
// it has one).
const (
	KindConfirmEmail  = "confirm_email"
	KindUpdateEmail   = "update_email"
	KindResetPassword = "reset_password"
	KindDeleteAccount = "delete_account"
	KindPLCOperation  = "plc_operation"
	KindSignInCode    = "sign_in_code"
	KindAdmin         = "admin" // admin.sendEmail: content given by the admin
)

var subjects = map[string]string{
	KindConfirmEmail:  "Email Confirmation",
	KindUpdateEmail:   "Email Update Requested",
	KindResetPassword: "Password Reset Requested",
	KindDeleteAccount: "Account Deletion Requested",
	KindPLCOperation:  "PLC Update Operation Requested",
	KindSignInCode:    "Sign-in Code",
}

var titles = map[string]string{
	KindConfirmEmail:  "Confirm your email address",
	KindUpdateEmail:   "Confirm your new email address",
	KindResetPassword: "Reset your password",
	KindDeleteAccount: "Delete your account",
	KindPLCOperation:  "Sign an identity change",
	KindSignInCode:    "Your sign-in code",
}

//go:embed templates
var templateFS embed.FS

// Data fills a template.
type Data struct {
	Service string // the PDS's hostname
	Token   string // the code
	Handle  string // the account's handle, if known
	Title   string // set by Render
}

// Render builds the message of kind to address to, from from.
func Render(kind, from, to string, d Data) (*Message, error) {
	subject, ok := subjects[kind]
	if !ok {
		return nil, fmt.Errorf("mail: no template %q", kind)
	}
	d.Title = titles[kind]
	txt, err := texttemplate.ParseFS(templateFS, "templates/"+kind+".txt")
	if err != nil {
		return nil, err
	}
	html, err := htmltemplate.ParseFS(templateFS, "templates/layout.html", "templates/"+kind+".html")
	if err != nil {
		return nil, err
	}
	var tb, hb bytes.Buffer
	if err := txt.Execute(&tb, d); err != nil {
		return nil, err
	}
	if err := html.ExecuteTemplate(&hb, "layout", d); err != nil {
		return nil, err
	}
	return &Message{From: from, To: to, Subject: subject, Text: strings.TrimSpace(tb.String()) + "\n", HTML: hb.String(), Kind: kind}, nil
}

// Kinds lists the templated kinds.
func Kinds() []string {
	return []string{KindConfirmEmail, KindUpdateEmail, KindResetPassword, KindDeleteAccount, KindPLCOperation, KindSignInCode}
}
