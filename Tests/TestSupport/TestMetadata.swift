import Foundation

/// The metadata backend the engine and filesystem suites run on: the embedded SQLite by
/// default; with `BERTH_TEST_METADATA=postgres`, the cluster state and volumes' namespaces
/// in PostgreSQL (`TestPostgres`), so that CI runs the same suites against both backends.
/// A state directory keeps its database for the life of the test process: an engine
/// reopened on it (a restart, a crash) finds the same cluster.
public enum TestMetadata {
    public static var postgres: Bool { ProcessInfo.processInfo.environment["BERTH_TEST_METADATA"] == "postgres" }

    /// The `--metadata` URL for an engine on `stateDirectory` (nil: SQLite in it).
    public static func url(forStateDirectory stateDirectory: String) -> String? {
        guard postgres else { return nil }
        let key = (stateDirectory as NSString).standardizingPath
        return databases.withLock { known in
            if let url = known[key] { return url }
            do {
                let url = try TestPostgres.database()
                known[key] = url
                return url
            } catch {
                fatalError("BERTH_TEST_METADATA=postgres: \(error)")
            }
        }
    }

    /// `berth-engine` arguments for the same (none for SQLite).
    public static func arguments(forStateDirectory stateDirectory: String) -> [String] {
        url(forStateDirectory: stateDirectory).map { ["--metadata", $0] } ?? []
    }

    private static let databases = LockedDictionary()

    final class LockedDictionary: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String: String] = [:]
        func withLock<T>(_ body: (inout [String: String]) -> T) -> T { lock.withLock { body(&values) } }
    }
}
