// Package actor serves the app.bsky.actor methods this PDS answers in
// place of the AppView: getPreferences and putPreferences (one file each).
//
// Preferences are private account state: each putPreferences is a private
// event in the log (accounts.TypePreferencesPut, never on the firehose),
// and the accounts projection holds the current ones, so they replay with
// everything else and leave with a deleted account. As the reference PDS
// does, only app.bsky.* preference types are accepted, validated against
// the app.bsky.actor.defs#preferences lexicon; personal details (birth
// date) are for full sessions only, and a declared-age preference is
// derived from them on read. A request whose atproto-proxy header names
// another AppView is forwarded there instead (api/proxy).
package actor
