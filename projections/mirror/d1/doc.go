// Package d1 is a client of Cloudflare D1's REST API: POST
// {api}/accounts/{account}/d1/database/{database}/query with a Bearer
// token, a body of {"sql","params"} or {"batch":[...]}, and Cloudflare's
// envelope {result:[{results,success,meta}],success,errors,messages} back,
// one result per statement. It is plain net/http and encoding/json.
//
// It keeps to D1's limits before sending (Check): at most 100 bound
// parameters and 100,000 bytes of SQL per statement, 2,000,000 bytes per
// value. Parameters are strings, as the API documents them; SQL casts
// where it compares them with anything but a typed column.
//
// The Cloudflare API allows 1200 requests per 5 minutes per user, shared
// by all of the user's tokens and the dashboard, and answers 429 for five
// minutes once that is exceeded. So every request, retries included,
// first takes a token from a budget (Options.Budget per
// Options.BudgetWindow, by default half the limit); 429, 5xx and network
// errors are retried with exponential backoff and full jitter, honouring
// retry-after; a 400 (a SQL error: a bug) fails at once with the
// statement in the error; 401/403 is ErrAuth. The token is sent in the
// Authorization header and nowhere else: no error or log line holds it.
package d1
