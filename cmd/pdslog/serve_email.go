package main

import (
	"fmt"

	"github.com/pdslog/pdslog/api/pds/mail"
)

// emailSettings are serve's email settings, under the reference's names.
type emailSettings struct {
	smtpURL, from                     string
	moderationSMTPURL, moderationFrom string
}

func (e *emailSettings) register(f *flags) {
	f.Secret(&e.smtpURL, "email-smtp-url", "SMTP server for account email: smtp://USER:PASS@HOST:PORT (STARTTLS when offered) or smtps://…; unset: no email (in dev mode, messages go to the log)", "PDS_EMAIL_SMTP_URL")
	f.String(&e.from, "email-from-address", "", "sender address of account email (default: noreply@HOSTNAME)", "PDS_EMAIL_FROM_ADDRESS")
	f.Secret(&e.moderationSMTPURL, "moderation-email-smtp-url", "SMTP server for admin.sendEmail (default: the account email server)", "PDS_MODERATION_EMAIL_SMTP_URL")
	f.String(&e.moderationFrom, "moderation-email-address", "", "sender address of admin.sendEmail (default: the account email sender)", "PDS_MODERATION_EMAIL_ADDRESS")
}

// emailConfig is the validated email settings.
type emailConfig struct {
	sender, moderation   mail.Sender // nil: not configured
	from, moderationFrom string
}

func (e *emailSettings) config() (emailConfig, error) {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	var cfg emailConfig
	if e.smtpURL != "" {
		s, err := mail.NewSMTP(e.smtpURL)
		if err != nil {
			return cfg, bad("PDS_EMAIL_SMTP_URL", "%v", err)
		}
		cfg.sender = s
	}
	if e.moderationSMTPURL != "" {
		s, err := mail.NewSMTP(e.moderationSMTPURL)
		if err != nil {
			return cfg, bad("PDS_MODERATION_EMAIL_SMTP_URL", "%v", err)
		}
		cfg.moderation = s
	}
	for _, a := range []struct{ env, v string }{{"PDS_EMAIL_FROM_ADDRESS", e.from}, {"PDS_MODERATION_EMAIL_ADDRESS", e.moderationFrom}} {
		if a.v == "" {
			continue
		}
		if _, err := mail.ParseAddress(a.v); err != nil {
			return cfg, bad(a.env, "%q is not an email address", a.v)
		}
	}
	cfg.from, cfg.moderationFrom = e.from, e.moderationFrom
	return cfg, nil
}
