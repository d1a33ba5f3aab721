using System.Text;
using System.Text.Json;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Baton.DemoBackend;

/// <summary>
/// A gRPC service with one bidirectional stream, <c>baton.demo.Echo/Chat</c>: each message is answered with
/// <c>{"echo", "count", "instance"}</c> — the session's counter as this instance holds it — so a client sees
/// which backend its stream is pinned to. Messages are UTF-8 JSON strings, so no <c>.proto</c> is needed; it
/// is served on the backend's HTTP/2 endpoints.
/// </summary>
internal sealed class EchoService(IOptions<DemoOptions> options) : EchoServiceBase
{
    public override async Task Chat(IAsyncStreamReader<string> requests, IServerStreamWriter<string> responses, ServerCallContext context)
    {
        var session = context.GetHttpContext().Session;
        await session.LoadAsync(context.CancellationToken);
        var count = session.GetInt32(DemoEndpoints.CounterKey) ?? 0;
        while (await requests.MoveNext(context.CancellationToken))
        {
            await responses.WriteAsync(JsonSerializer.Serialize(new EchoAnswer(requests.Current, count, options.Value.InstanceId), JsonSerializerOptions.Web));
        }
    }
}

/// <summary>The service's shape, as generated code would declare it: gRPC binds the overrides of its methods.</summary>
[BindServiceMethod(typeof(EchoServiceBase), nameof(BindService))]
internal abstract class EchoServiceBase
{
    public static readonly Marshaller<string> Utf8 = Marshallers.Create(Encoding.UTF8.GetBytes, Encoding.UTF8.GetString);

    public static readonly Method<string, string> ChatMethod = new(MethodType.DuplexStreaming, "baton.demo.Echo", "Chat", Utf8, Utf8);

    public static void BindService(ServiceBinderBase binder, EchoServiceBase? service)
        => binder.AddMethod(ChatMethod, service is null ? null : service.Chat);

    public abstract Task Chat(IAsyncStreamReader<string> requests, IServerStreamWriter<string> responses, ServerCallContext context);
}
