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

    /// The connection to `host` at `address`, and whether this call made it.
    func connection(host: String, address: String) throws(StorageError) -> (connection: AgentConnection, new: Bool) {
        let key = Self.key(host, address)
        let made: Result<(AgentConnection, Bool), any Error> = connections.withLock { all in
            if let existing = all[key] { return .success((existing, false)) }
            do {
                let created = try AgentConnection(node: host, address: address, tls: tls)
                all[key] = created
                return .success((created, true))
            } catch { return .failure(error) }
        }
        switch made {
        case .success(let (connection, new)):
            connection.startHeartbeat()
            return (connection, new)
        case .failure(let error):
            throw .invalidDevice("host \(host) at \(address): \(error)")
        }
    }

    private static func key(_ host: String, _ address: String) -> String { host + "@" + address }

    /// Connections open now (tests).
    var connectionCount: Int { connections.withLock { $0.count } }

    /// Adds a device of `host` through its agent at `address`. With `verify`, the agent must
    /// answer and serve the device; when it does not, a connection this call opened is
    /// closed again (an admin's mistyped `device add --agent` leaves no heartbeat behind),
    /// while one other devices of the host already use stays.
    public func device(id: DeviceID, host: String, address: String, capacityBytes: Int, verify: Bool) throws(StorageError) -> any ShardDevice {
        let (connection, new) = try connection(host: host, address: address)
        let device = RemoteShardDevice(id: id, connection: connection, capacityBytes: capacityBytes)
        guard verify else { return device }
        do throws(StorageError) {
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
        } catch {
            if new {
                connections.withLock { all in if all[Self.key(host, address)] === connection { all[Self.key(host, address)] = nil } }
                connection.close()
            }
            throw error
        }
    }

    /// Closes every connection.
    public func close() {
        for connection in connections.withLock({ Array($0.values) }) { connection.close() }
    }
}
