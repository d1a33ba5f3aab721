using Baton.Backend;
using Baton.Protocol;

namespace Microsoft.AspNetCore.Http;

/// <summary>
/// Session identity for apps behind a Baton gateway: give the session a new id at login (so an id planted
/// before login is worthless after it), and end it at logout. Both take effect in this request's response.
/// </summary>
public static class BatonSessionHttpContextExtensions
{
    /// <summary>
    /// Gives the session a new id in this response (call it at login, before the response starts): the state
    /// carries over, the old id is dead everywhere. False when the request did not come through a gateway or
    /// the response has already started.
    /// </summary>
    public static bool RotateBatonSession(this HttpContext context)
        => context.Features.Get<BatonSessionControl>()?.Request(SessionActionKind.Rotate, context.Response.HasStarted) == true;

    /// <summary>
    /// Ends the session in this response (call it at logout, before the response starts): its state is
    /// dropped everywhere and its cookie expired; the client's next request starts a fresh, empty session.
    /// False when the request did not come through a gateway or the response has already started.
    /// </summary>
    public static bool EndBatonSession(this HttpContext context)
        => context.Features.Get<BatonSessionControl>()?.Request(SessionActionKind.End, context.Response.HasStarted) == true;
}
