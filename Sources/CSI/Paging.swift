import GRPCCore
import Metadata

/// The paging rules ListVolumes and ListSnapshots share: `max_entries` ≥ 0 (0: all), a
/// `starting_token` is an id this driver issued (else ABORTED, as the spec asks), and one
/// entry more than asked is fetched to tell whether a next page exists.
struct Paging {
    /// The id to list after (nil: from the start).
    let after: String?
    /// How many to fetch (nil: all).
    let fetch: Int?

    init(maxEntries: Int32, startingToken token: String, issued: (String) -> Bool) throws(RPCError) {
        guard maxEntries >= 0 else { throw Failures.invalid("max_entries must not be negative") }
        guard token.isEmpty || issued(token) else {
            throw RPCError(code: .aborted, message: "starting_token \"\(token.prefix(64))\" was not issued by this driver")
        }
        after = token.isEmpty ? nil : token
        fetch = maxEntries > 0 ? Int(maxEntries) + 1 : nil
    }

    /// The page of `found` (fetched with `fetch`) and the token of the next one ("" if none).
    func page(_ found: [VolumeRecord]) -> (entries: [VolumeRecord], nextToken: String) {
        let entries = fetch.map { Array(found.prefix($0 - 1)) } ?? found
        return (entries, entries.count < found.count ? entries.last?.id ?? "" : "")
    }
}
