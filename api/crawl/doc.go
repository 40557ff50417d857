// Package crawl tells relays (PDS_CRAWLERS) that this PDS has data for
// them: com.atproto.sync.requestCrawl with our hostname, on start and then
// after new activity in the log, at most once per interval (the reference
// PDS's 20 minutes), so a relay that forgot us, restarted or never knew us
// comes back to the firehose.
package crawl
