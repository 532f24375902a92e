import ClusterTLS
import Placement
import Storage
import Synchronization

/// The engine's way to the other hosts' devices (`DeviceConnector`): one `AgentConnection`
/// per host and address, with its heartbeat, shared by the host's devices.
public final class AgentDirectory: DeviceConnector {
    let tls: TLSDirectory
    private let connections = Mutex<[String: AgentConnection]>([:])

    public init(tls: TLSDirectory) { self.tls = tls }

    func connection(host: String, address: String) throws(StorageError) -> AgentConnection {
        let key = host + "@" + address
        let made: Result<AgentConnection, any Error> = connections.withLock { all in
            if let existing = all[key] { return .success(existing) }
            do {
                let created = try AgentConnection(node: host, address: address, tls: tls)
                all[key] = created
                return .success(created)
            } catch { return .failure(error) }
        }
        switch made {
        case .success(let connection):
            connection.startHeartbeat()
            return connection
        case .failure(let error):
            throw .invalidDevice("host \(host) at \(address): \(error)")
        }
    }

    public func device(id: DeviceID, host: String, address: String, capacityBytes: Int, verify: Bool) throws(StorageError) -> any ShardDevice {
        let connection = try connection(host: host, address: address)
        let device = RemoteShardDevice(id: id, connection: connection, capacityBytes: capacityBytes)
        guard verify else { return device }
        switch AgentConnection.wait({ try await connection.status(timeout: AgentConnection.verifyTimeout) }) {
        case .success(let status):
            guard let served = status.devices.first(where: { $0.id == id.rawValue }) else {
                throw .invalidDevice("the agent of host \(host) at \(address) serves no device \"\(id)\"; it serves \(status.devices.map(\.id))")
            }
            guard served.reachable else { throw .deviceUnavailable(id, reason: "its directory on host \(host) does not answer") }
            return device
        case .failure(let error):
            throw .deviceUnavailable(id, reason: "the agent of host \(host) at \(address) did not answer: \(error)")
        }
    }

    /// Closes every connection.
    public func close() {
        for connection in connections.withLock({ Array($0.values) }) { connection.close() }
    }
}
