import Engine
import GRPCCore
import Storage
import StorageClasses

/// The one place where engine and filesystem failures become CSI status codes.
public enum Failures {
    public static func invalid(_ message: String) -> RPCError { RPCError(code: .invalidArgument, message: message) }
    public static func notFound(_ message: String) -> RPCError { RPCError(code: .notFound, message: message) }

    public static func map(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        guard let error = error as? EngineError else { return RPCError(code: .internalError, message: "\(error)") }
        switch error {
        case .alreadyExists: return RPCError(code: .alreadyExists, message: error.description)
        case .outOfRange: return RPCError(code: .outOfRange, message: error.description)
        case .busy: return RPCError(code: .aborted, message: error.description)
        case .unknownVolume, .unknownSnapshot: return RPCError(code: .notFound, message: error.description)
        case .unknownClass, .invalidArgument, .storageClass: return RPCError(code: .invalidArgument, message: error.description)
        case .insufficientCapacity: return RPCError(code: .resourceExhausted, message: error.description)
        case .storage(let s):
            if case .noSpace = s { return RPCError(code: .resourceExhausted, message: error.description) }
            return RPCError(code: .unavailable, message: error.description)
        case .classConflict, .classInUse, .deviceInUse, .unknownDevice: return RPCError(code: .failedPrecondition, message: error.description)
        case .placement: return RPCError(code: .failedPrecondition, message: error.description)
        case .metadata, .io: return RPCError(code: .internalError, message: error.description)
        }
    }
}
