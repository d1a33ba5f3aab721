using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Baton.Tests.Infrastructure;

/// <summary>An <see cref="ILoggerProvider"/> that keeps every log line (message, exception, scopes) of every level.</summary>
internal sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>Adds the capture to a host's logging, with every category at Trace.</summary>
    public void AttachTo(WebApplicationBuilder builder)
    {
        builder.Logging.AddProvider(this);
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddFilter<LogCapture>(null, LogLevel.Trace);
    }

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        private readonly AsyncLocal<Stack<object?>> _scopes = new();

        public IDisposable BeginScope<TState>(TState state)
            where TState : notnull
        {
            var stack = _scopes.Value ??= new Stack<object?>();
            stack.Push(state);
            return new Pop(stack);
        }

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scopes = _scopes.Value is { Count: > 0 } stack ? " scopes: " + string.Join(" | ", stack) : string.Empty;
            var properties = state is IEnumerable<KeyValuePair<string, object?>> pairs ? " properties: " + string.Join(", ", pairs.Select(p => $"{p.Key}={p.Value}")) : string.Empty;
            lines.Enqueue($"{logLevel} {category}[{eventId.Id}] {formatter(state, exception)}{properties}{scopes} {exception}");
        }

        private sealed class Pop(Stack<object?> stack) : IDisposable
        {
            public void Dispose() => stack.TryPop(out _);
        }
    }
}
