import GRPCCore
import Placement
import Storage

/// How a `StorageError` crosses the wire: a gRPC status whose code says the error's kind
/// (proto/agent.proto lists them) and whose message is the error's text, and back again on
/// the client, so the object store treats a remote device's errors as it treats a local
/// one's (a missing shard is not a corrupt one, a full device is not an unreachable one).
enum AgentErrors {
    static func status(_ error: StorageError) -> RPCError {
        switch error {
        case .shardNotFound: RPCError(code: .notFound, message: error.description)
        case .corruptShard: RPCError(code: .dataLoss, message: error.description)
        case .noSpace: RPCError(code: .resourceExhausted, message: error.description)
        // Not UNAVAILABLE: that is the transport's "the host did not answer".
        case .deviceUnavailable: RPCError(code: .failedPrecondition, message: error.description)
        case .objectTooLarge, .invalidDevice, .unknownClass: RPCError(code: .invalidArgument, message: error.description)
        case .io, .unreadable: RPCError(code: .internalError, message: error.description)
        }
    }

    /// The storage error a failed call to `device`'s agent means for `shard`.
    static func storageError(_ error: any Error, device: DeviceID, shard: String, agent: String) -> StorageError {
        guard let rpc = error as? RPCError else {
            return .deviceUnavailable(device, reason: "agent \(agent): \(error)")
        }
        let message = rpc.message
        switch rpc.code {
        case .notFound: return .shardNotFound(device: device, shard: shard)
        case .dataLoss: return .corruptShard(device: device, shard: shard, reason: message)
        case .resourceExhausted where message.contains("no space"): return .noSpace(device: device, neededBytes: 0, freeBytes: 0)
        case .failedPrecondition: return .deviceUnavailable(device, reason: "agent \(agent): \(message)")
        case .resourceExhausted, .internalError, .invalidArgument, .permissionDenied, .outOfRange:
            return .io(device: device, operation: "agent \(agent): \(message)", errno: EIO)
        default:
            // unavailable, deadlineExceeded, cancelled, unknown: the host did not answer.
            return .deviceUnavailable(device, reason: "agent \(agent): \(rpc.code): \(message)")
        }
    }

    static func invalid(_ message: String) -> RPCError { RPCError(code: .invalidArgument, message: message) }
}

let EIO: Int32 = 5
