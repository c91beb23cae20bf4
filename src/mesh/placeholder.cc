// Removed once the first mesh source lands; an empty library does not link on its own.
namespace augur::mesh {}
