// Package mail sends pdslog's email: the messages of the emailed-token
// flows (confirm email, update email, reset password, delete account, PLC
// operation, sign-in code) and the admin's messages.
//
// A Sender delivers one message: SMTP (PDS_EMAIL_SMTP_URL, smtp:// with
// STARTTLS whenever the server offers it, smtps:// with TLS from the first
// byte, AUTH PLAIN with the URL's user and password), or Log (development
// without SMTP: the message, code included, goes to the log). An Outbox
// sends asynchronously: Enqueue never blocks on the server, and a message
// the server refuses or cannot take is retried with backoff until it is
// sent or its retry budget is spent, then logged and counted as failed.
// A message is sent at most once successfully: it leaves the queue as soon
// as the server accepted its DATA.
//
// Messages are multipart/alternative (text and HTML) from the embedded
// templates (templates/), naming the service and the code. Addresses are
// parsed (net/mail) and header values refuse CR and LF, so nothing a user
// chose (an address, a handle) can inject headers.
package mail
