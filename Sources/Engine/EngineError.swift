import Metadata
import Placement
import Storage
import StorageClasses

/// Why an engine operation was refused or failed. Each case names what it concerns; the
/// CSI and admin layers map these to status codes in one place.
public enum EngineError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownVolume(String)
    case unknownSnapshot(String)
    /// A volume or snapshot of that name exists, made from something else.
    case alreadyExists(String)
    /// A size outside what the request allows (a clone smaller than its source).
    case outOfRange(String)
    /// Another operation on the same volume or snapshot is in progress (its copy being made).
    case busy(String)
    case unknownClass(String)
    case unknownDevice(String)
    /// A class with this name exists with a different redundancy, domain, chunk size or PG count.
    case classConflict(String)
    case classInUse(String)
    /// The device still holds shards (drain it and let the mover finish first).
    case deviceInUse(String)
    case invalidArgument(String)
    /// The class cannot hold that much more (admission control).
    case insufficientCapacity(className: String, requestedBytes: Int64, availableBytes: Int64)
    case placement(PlacementError)
    case storage(StorageError)
    case storageClass(StorageClassError)
    case metadata(String)
    case io(String)

    public var description: String {
        switch self {
        case .unknownVolume(let v): "no volume \"\(v)\""
        case .unknownSnapshot(let v): "no snapshot \"\(v)\""
        case .alreadyExists(let why), .outOfRange(let why), .busy(let why): why
        case .unknownClass(let c): "no storage class \"\(c)\""
        case .unknownDevice(let d): "no device \"\(d)\""
        case .classConflict(let why): why
        case .classInUse(let c): "storage class \"\(c)\" is used by volumes"
        case .deviceInUse(let why): why
        case .invalidArgument(let why): why
        case .insufficientCapacity(let c, let requested, let available):
            "storage class \"\(c)\" cannot hold \(requested) more bytes (\(available) available)"
        case .placement(let e): "\(e)"
        case .storage(let e): "\(e)"
        case .storageClass(let e): "\(e)"
        case .metadata(let why): "metadata: \(why)"
        case .io(let why): why
        }
    }

    /// Runs `body`, turning the lower layers' errors into `EngineError`.
    static func wrap<T>(_ body: () throws -> T) throws(EngineError) -> T {
        do { return try body() } catch let e as EngineError { throw e } catch let e as PlacementError {
            throw .placement(e)
        } catch let e as StorageError { throw .storage(e) } catch let e as StorageClassError {
            throw .storageClass(e)
        } catch let e as MetadataError {
            switch e {
            case .inUse(let what): throw .classInUse(what)
            default: throw .metadata("\(e)")
            }
        } catch { throw .metadata("\(error)") }
    }
}
