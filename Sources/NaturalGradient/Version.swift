/// The library and `ngrad` version.
public enum NaturalGradientVersion {
    /// Semantic version string.
    public static let string = "0.1.0"
}
