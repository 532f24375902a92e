import AgentProtocol
import Storage

// Object ids and positions in the agent's messages, one conversion each way.

extension Berth_Agent_V1_ShardID {
    init(_ object: ObjectID, position: Int) {
        self.init()
        objectHigh = object.high
        objectLow = object.low
        self.position = UInt32(position)
    }

    var object: ObjectID { ObjectID(high: objectHigh, low: objectLow) }
}

extension Berth_Agent_V1_ShardRef {
    init(device: String, _ object: ObjectID, position: Int) {
        self.init()
        self.device = device
        objectHigh = object.high
        objectLow = object.low
        self.position = UInt32(position)
    }

    var object: ObjectID { ObjectID(high: objectHigh, low: objectLow) }
}
