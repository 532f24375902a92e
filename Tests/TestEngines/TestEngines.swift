import Engine
import Metadata
import TestSupport

extension EngineConfiguration {
    /// Settings of a test's engine on `stateDirectory`, on the suites' metadata backend
    /// (`TestMetadata`). On PostgreSQL it takes no controller lock: tests open the same
    /// cluster state twice in one process on purpose (a restart with the old engine still
    /// referenced), where SQLite lets them.
    public static func testing(_ stateDirectory: String) -> EngineConfiguration {
        var configuration = EngineConfiguration(stateDirectory: stateDirectory)
        if let url = TestMetadata.url(forStateDirectory: stateDirectory) {
            configuration.metadata = try! MetadataLocation.parse(url)
            configuration.controllerLock = false
        }
        return configuration
    }
}
