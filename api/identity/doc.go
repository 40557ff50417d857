// Package identity serves com.atproto.identity.*: resolveHandle,
// updateHandle and getRecommendedDidCredentials.
package identity
