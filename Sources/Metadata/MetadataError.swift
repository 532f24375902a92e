/// An operating error of the metadata layer, naming what it concerns.
public enum MetadataError: Error, Equatable, Sendable, CustomStringConvertible {
    case notFound(String)
    case alreadyExists(String)
    case inUse(String)
    case corrupt(String)
    case database(String)

    public var description: String {
        switch self {
        case .notFound(let what): "\(what) not found"
        case .alreadyExists(let what): "\(what) already exists"
        case .inUse(let what): "\(what) is in use"
        case .corrupt(let what): "metadata is corrupt: \(what)"
        case .database(let what): "database error: \(what)"
        }
    }
}
